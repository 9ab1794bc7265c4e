import { type Dispatcher, Pool } from 'undici';

export interface LoadFigures {
  /** Requests answered with the expected status. */
  ok: number;
  failed: number;
  perSecond: number;
  p50: number;
  p99: number;
}

/**
 * A closed-loop load: `connections` clients on one keep-alive pool, each sending its next request when the
 * previous one is answered, for `durationMs`. `request(client, n)` is the n-th request of a client; an answer
 * with `okStatus` counts, with its latency, and any other as failed.
 */
export async function closedLoop(
  url: string,
  options: {
    connections: number;
    durationMs: number;
    okStatus: number;
    request: (client: number, n: number) => Dispatcher.RequestOptions;
  },
): Promise<LoadFigures> {
  const pool = new Pool(url, { connections: options.connections });
  const latencies: number[] = [];
  let failed = 0;
  const started = performance.now();
  const until = started + options.durationMs;
  await Promise.all(
    Array.from({ length: options.connections }, async (_, client) => {
      for (let n = 0; performance.now() < until; n += 1) {
        const sent = performance.now();
        const response = await pool.request(options.request(client, n));
        await response.body.dump();
        if (response.statusCode === options.okStatus) latencies.push(performance.now() - sent);
        else failed += 1;
      }
    }),
  );
  const elapsed = performance.now() - started;
  await pool.close();
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return {
    ok: latencies.length,
    failed,
    perSecond: (latencies.length / elapsed) * 1000,
    p50: at(0.5),
    p99: at(0.99),
  };
}

/** The middle value (the upper one of an even count). */
export const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
