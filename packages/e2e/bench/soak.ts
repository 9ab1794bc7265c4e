/**
 * The soak: steady open-loop load for a long time, watching each service's memory. Prints figures; asserts nothing.
 *
 * The four services on one broker (as the open-loop benchmark runs them), accept load and `Prefer: wait` load side by
 * side at fixed rates, in one-minute rounds so that latency can be followed over time. Every 10 s the resident
 * memory of each service is read from /proc. A closed request's state is kept by the aggregator for
 * `AGGREGATOR_CLOSED_RETENTION_MS` (10 minutes by default), so memory should grow until that window is full and stay
 * flat after it: the benchmark reports each service's growth per minute once the window is full, and the aggregator's
 * memory per request held in the window (its growth from the start until the window is full, divided by the requests
 * it then holds: an upper bound, as it includes everything else the process grew by).
 *
 *   pnpm --filter @sluice/e2e bench:soak
 * The ingress keeps every status for `STATUS_RETENTION_MS` (24 hours) in its state store: in its own heap with the
 * embedded store (the default here), so its memory grows for a day by design; `BENCH_SOAK_REDIS=1` puts the statuses
 * in a Redis of the test kit's, as a deployment of several replicas does.
 *
 *   BENCH_SOAK_MINUTES=15 BENCH_SOAK_ACCEPT_RATE=200 BENCH_SOAK_WAIT_RATE=25 BENCH_SOAK_RETENTION_MS=600000
 *   BENCH_SOAK_REDIS=1
 */
import { availableParallelism } from 'node:os';
import { serviceNames, startRedis } from '@sluice/testkit';
import { rssMb } from './costs.ts';
import { loadTargets, startLoadStack } from './loads.ts';
import { type OpenLoopStep, openLoop } from './vegeta.ts';

const minutes = Number(process.env.BENCH_SOAK_MINUTES ?? 15);
const acceptRate = Number(process.env.BENCH_SOAK_ACCEPT_RATE ?? 200);
const waitRate = Number(process.env.BENCH_SOAK_WAIT_RATE ?? 25);
const retentionMs = Number(process.env.BENCH_SOAK_RETENTION_MS ?? 600_000);
const roundSeconds = 60;

const redis = process.env.BENCH_SOAK_REDIS === '1' ? await startRedis() : undefined;
const { stack, stop } = await startLoadStack({
  AGGREGATOR_CLOSED_RETENTION_MS: String(retentionMs),
  ...(redis !== undefined ? { STATE_STORE: 'redis', REDIS_URL: redis.url } : {}),
});
const targets = loadTargets(stack.ingress);

const readRss = async () =>
  Object.fromEntries(
    await Promise.all(
      serviceNames.map(async (name) => [name, await rssMb(stack.services[name].pid as number)] as const),
    ),
  ) as Record<(typeof serviceNames)[number], number>;

console.log(
  `machine: ${availableParallelism()} cores, Node ${process.version}; ${minutes} min of ${acceptRate}/s accept + ${waitRate}/s Prefer: wait; closed requests kept ${retentionMs / 60_000} min; statuses in ${redis === undefined ? "the ingress's heap (embedded store)" : 'Redis'}\n`,
);
// Warm-up (JIT, pools, fetch sessions), then the baseline.
await Promise.all([
  openLoop(targets.accept.target, { rate: 50, seconds: 5, okStatus: 202 }),
  openLoop(targets.wait.target, { rate: 10, seconds: 5, okStatus: 200 }),
]);
const startedAt = Date.now();
const samples: { at: number; rss: Record<string, number> }[] = [{ at: 0, rss: await readRss() }];
const sampler = setInterval(() => {
  void readRss().then((rss) => samples.push({ at: Date.now() - startedAt, rss }));
}, 10_000);

const ms = (value: number) => (Number.isNaN(value) ? '–' : value.toFixed(0));
const describe = (step: OpenLoopStep) =>
  `${step.achieved.toFixed(0)}/s, ${(step.success * 100).toFixed(1)}%, p50 ${ms(step.p50)} / p99 ${ms(step.p99)} ms`;
console.log(`| minute | accept | wait | ${serviceNames.map((name) => `${name} MB`).join(' | ')} |`);
console.log(`| ---: | --- | --- | ${serviceNames.map(() => '---:').join(' | ')} |`);
let sent = 0;
for (let minute = 1; minute <= minutes; minute += 1) {
  const [accept, wait] = await Promise.all([
    openLoop(targets.accept.target, { rate: acceptRate, seconds: roundSeconds, okStatus: 202 }),
    openLoop(targets.wait.target, { rate: waitRate, seconds: roundSeconds, okStatus: 200 }),
  ]);
  sent += (acceptRate + waitRate) * roundSeconds;
  const rss = await readRss();
  console.log(
    `| ${minute} | ${describe(accept)} | ${describe(wait)} | ${serviceNames.map((name) => rss[name].toFixed(0)).join(' | ')} |`,
  );
}
clearInterval(sampler);
const elapsedMs = Date.now() - startedAt;
await stop();
await redis?.stop();

/** Least-squares slope of a service's RSS over the samples taken from `fromMs` on, in MB per minute. */
function slope(name: string, fromMs: number): number {
  const points = samples.filter((s) => s.at >= fromMs).map((s) => [s.at / 60_000, s.rss[name] as number]);
  if (points.length < 3) return Number.NaN;
  const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
  const mx = mean(points.map(([x]) => x as number));
  const my = mean(points.map(([, y]) => y as number));
  const sxy = points.reduce((sum, [x, y]) => sum + ((x as number) - mx) * ((y as number) - my), 0);
  const sxx = points.reduce((sum, [x]) => sum + ((x as number) - mx) ** 2, 0);
  return sxy / sxx;
}
const nearest = (atMs: number) =>
  samples.reduce((best, s) => (Math.abs(s.at - atMs) < Math.abs(best.at - atMs) ? s : best));
const full = retentionMs < elapsedMs ? nearest(retentionMs) : undefined;
const first = samples[0] as { rss: Record<string, number> };
const last = samples.at(-1) as { rss: Record<string, number> };
console.log(
  `\n| service | RSS at start, MB | when the window is full | at the end | growth once full, MB/min |\n| --- | ---: | ---: | ---: | ---: |`,
);
for (const name of serviceNames) {
  const growth = full === undefined ? Number.NaN : slope(name, retentionMs);
  console.log(
    `| ${name} | ${(first.rss[name] as number).toFixed(0)} | ${full === undefined ? '–' : (full.rss[name] as number).toFixed(0)} | ${(last.rss[name] as number).toFixed(0)} | ${Number.isNaN(growth) ? '–' : growth.toFixed(2)} |`,
  );
}
if (full === undefined) {
  console.log(
    `\nthe soak (${minutes} min) ended before the retention window was full: no per-request figure`,
  );
} else {
  // Every request is a single batch: the aggregator holds those of the last retention window.
  const held = ((acceptRate + waitRate) * retentionMs) / 1_000;
  const grownKb = ((full.rss.aggregator as number) - (first.rss.aggregator as number)) * 1024;
  console.log(
    `\naggregator: ${held.toFixed(0)} closed requests held when the window is full; RSS grown ${(grownKb / 1024).toFixed(0)} MB: at most ${(grownKb / held).toFixed(2)} KB per closed request held`,
  );
}
console.log(`${sent} requests sent over ${(elapsedMs / 60_000).toFixed(1)} min`);
process.exit(0);
