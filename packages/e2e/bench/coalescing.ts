/**
 * Coalescing as clients see it: through the ingress, Kafka, the batch-worker, the aggregator and back. Prints
 * figures; asserts nothing.
 *
 * The four services on one broker; an upstream whose cost is per call (`costly-upstream.ts`: 4 calls at once,
 * 10 ms per call plus 0.5 ms per item) behind two routes, one calling it once per request and one coalescing
 * (`maxSize` 50, `maxWaitMs` 20, its JSON-array endpoint). Rounds of N requests with `Prefer: wait` from C clients
 * that each send the next when answered, the two routes alternating; completed requests per second of each
 * round and the ratio of the medians. (The in-process figure of `traffic.ts` leaves the four services out.)
 *
 *   pnpm --filter @sluice/e2e bench:coalescing
 *   BENCH_COALESCE_REQUESTS=1000 BENCH_COALESCE_CLIENTS=200 BENCH_COALESCE_ROUNDS=2
 */
import { availableParallelism } from 'node:os';
import { echo, startKafka } from '@sluice/testkit';
import { startStack, tenantKeys } from '../src/harness.ts';
import { costlyUpstream } from './costly-upstream.ts';

const requests = Number(process.env.BENCH_COALESCE_REQUESTS ?? 1_000);
const clients = Number(process.env.BENCH_COALESCE_CLIENTS ?? 200);
const rounds = Number(process.env.BENCH_COALESCE_ROUNDS ?? 2);
const upstreamCost = { slots: 4, perCallMs: 10, perItemMs: 0.5 };

const upstream = await costlyUpstream(upstreamCost);
const kafka = await startKafka({ forceJvm: true });
const target = `    upstream: { targets: [{ url: "${upstream.url}" }] }
    concurrency: 256`;
const stack = await startStack({
  brokers: kafka.bootstrap,
  upstream: echo,
  env: { KAFKA_TOPIC_PARTITIONS: '6', LOG_LEVEL: 'warn' },
  routes: {
    'per-call': target,
    coalesced: `${target}
    coalesce: { maxSize: 50, maxWaitMs: 20, path: /batch }`,
  },
});

/** N requests on `route` from `clients` clients, each waiting for its answer; completed/s and upstream calls. */
async function round(route: string, count: number) {
  let next = 0;
  let completed = 0;
  const codes: Record<string, number> = {};
  const callsBefore = upstream.calls();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < count) {
        const i = next++;
        const response = await fetch(`${stack.ingress}/v1/requests`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${tenantKeys.acme}`,
            'content-type': 'application/json',
            prefer: 'wait=60',
          },
          body: JSON.stringify({ route, method: 'POST', path: '/item', body: { sku: `s-${i}` } }),
        });
        const document = (await response.json()) as { status?: string };
        codes[String(response.status)] = (codes[String(response.status)] ?? 0) + 1;
        if (response.status === 200 && document.status === 'succeeded') completed += 1;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  return { perSecond: completed / seconds, completed, calls: upstream.calls() - callsBefore, codes };
}

console.log(
  `machine: ${availableParallelism()} cores, Node ${process.version}; ${requests} requests with Prefer: wait from ${clients} clients per round; upstream: ${upstreamCost.slots} calls at once, ${upstreamCost.perCallMs} ms per call + ${upstreamCost.perItemMs} ms per item\n`,
);
// Warm-up of both routes (JIT, pools, fetch sessions).
await round('per-call', 200);
await round('coalesced', 200);
const results: Record<string, number[]> = { 'per-call': [], coalesced: [] };
console.log('| round | route | completed/s | completed | upstream calls | status codes |');
console.log('| ---: | --- | ---: | ---: | ---: | --- |');
for (let r = 1; r <= rounds; r += 1) {
  // Alternate which goes first, so that neither always runs on a broker the other has just warmed.
  const order = r % 2 === 1 ? ['per-call', 'coalesced'] : ['coalesced', 'per-call'];
  for (const route of order) {
    const result = await round(route, requests);
    results[route]?.push(result.perSecond);
    console.log(
      `| ${r} | ${route} | ${result.perSecond.toFixed(0)} | ${result.completed} | ${result.calls} | ${JSON.stringify(result.codes)} |`,
    );
  }
}
const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};
const [perCall, coalesced] = [median(results['per-call'] ?? []), median(results.coalesced ?? [])];
console.log(
  `\ncoalescing end to end: ${coalesced.toFixed(0)} against ${perCall.toFixed(0)} completed requests/s (medians): ${(coalesced / perCall).toFixed(2)}×`,
);
await stack.stop();
await kafka.stop();
await upstream.close();
process.exit(0);
