import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { ensureTool, vegeta } from '@sluice/testkit';

/** One kind of request, as vegeta's JSON target format takes it. */
export interface Target {
  method: string;
  url: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface OpenLoopStep {
  offered: number;
  /** Answers with the expected status per second of the step. */
  achieved: number;
  /** Share of requests answered with the expected status. */
  success: number;
  /** Refused with 429 or 503 (shed at once, as overload should be). */
  refused: number;
  /** Of the refused, how many said when to come back (a Retry-After header). */
  refusedWithRetryAfter: number;
  /** p99 of the refusals' latency, ms: shedding should answer at once. */
  refusedP99: number;
  /** No answer within the client's time-out. */
  timedOut: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  codes: Record<string, number>;
}

/**
 * Load at a fixed arrival rate with vegeta (open loop: a request is sent on schedule whether or not earlier ones
 * were answered, so queueing delay is measured, not hidden). Latencies of the answers with `okStatus`, in ms.
 */
export async function openLoop(
  target: Target,
  options: { rate: number; seconds: number; okStatus: number; timeoutSeconds?: number },
): Promise<OpenLoopStep> {
  const binary = ensureTool(vegeta);
  const attack = spawn(
    binary,
    [
      'attack',
      '-format=json',
      `-rate=${options.rate}/1s`,
      `-duration=${options.seconds}s`,
      `-timeout=${options.timeoutSeconds ?? 15}s`,
      '-keepalive=true',
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const encode = spawn(binary, ['encode', '--to', 'json'], { stdio: ['pipe', 'pipe', 'inherit'] });
  attack.stdout.pipe(encode.stdin);
  attack.stdin.end(
    `${JSON.stringify({
      method: target.method,
      url: target.url,
      header: Object.fromEntries(
        Object.entries(target.headers ?? {}).map(([name, value]) => [name, [value]]),
      ),
      ...(target.body !== undefined ? { body: Buffer.from(target.body).toString('base64') } : {}),
    })}\n`,
  );
  const latencies: number[] = [];
  const refusals: number[] = [];
  let refusedWithRetryAfter = 0;
  const codes: Record<string, number> = {};
  let total = 0;
  let timedOut = 0;
  for await (const line of createInterface({ input: encode.stdout })) {
    if (line.trim() === '') continue;
    const result = JSON.parse(line) as {
      code: number;
      latency: number;
      error: string;
      headers?: Record<string, string[]>;
    };
    total += 1;
    codes[String(result.code)] = (codes[String(result.code)] ?? 0) + 1;
    if (result.code === options.okStatus) latencies.push(result.latency / 1e6);
    else if (result.code === 429 || result.code === 503) {
      refusals.push(result.latency / 1e6);
      if (result.headers?.['Retry-After'] !== undefined) refusedWithRetryAfter += 1;
    } else if (result.code === 0 && /timeout|deadline/i.test(result.error)) timedOut += 1;
  }
  latencies.sort((a, b) => a - b);
  refusals.sort((a, b) => a - b);
  const quantile = (values: number[], q: number) =>
    values[Math.min(values.length - 1, Math.floor(q * values.length))] ?? Number.NaN;
  const at = (q: number) => quantile(latencies, q);
  return {
    offered: options.rate,
    achieved: latencies.length / options.seconds,
    success: total === 0 ? 0 : latencies.length / total,
    refused: refusals.length,
    refusedWithRetryAfter,
    refusedP99: quantile(refusals, 0.99),
    timedOut,
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    p999: at(0.999),
    codes,
  };
}

/**
 * Whether a step is past saturation: below 90% of the offered rate answered as expected, below 95% success, or a
 * p99 over 5 s. The last step before the first such one is the mode's sustainable rate.
 */
export const pastSaturation = (step: OpenLoopStep): boolean =>
  step.achieved < 0.9 * step.offered || step.success < 0.95 || step.p99 > 5_000;

export function describeStep(step: OpenLoopStep): string {
  const ms = (value: number) => (Number.isNaN(value) ? '–' : value.toFixed(1));
  return `${step.offered}/s offered: ${step.achieved.toFixed(0)}/s answered as expected (${(step.success * 100).toFixed(1)}%), p50 ${ms(step.p50)} p90 ${ms(step.p90)} p99 ${ms(step.p99)} p99.9 ${ms(step.p999)} ms; ${step.refused} refused, ${step.timedOut} timed out`;
}
