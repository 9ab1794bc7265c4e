/**
 * The pipeline benchmark. Prints figures; asserts nothing.
 *
 * 1. End to end: requests submitted in batches to the four services on empty topics, completed (terminal
 *    status) per second against a local upstream.
 * 2. Accept: POST /v1/requests against the ingress alone and against a bare node:http server that produces the
 *    same records with the same Kafka client, alternating rounds so that noise hits both alike. Reported:
 *    accepted requests/s, p50 and p99 (medians of the rounds), and the ratio ingress/bare (the headline figure).
 *
 *   pnpm bench                       (starts a broker unless KAFKA_BROKERS is set)
 *   BENCH_SECONDS=10 BENCH_CONNECTIONS=64 BENCH_E2E_REQUESTS=10000 pnpm bench
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { topicSpecifications } from '@sluice/contracts';
import { createKafkaClient, provisionTopics } from '@sluice/kafka';
import {
  echo,
  freePort,
  ServiceProcess,
  serviceNames,
  startKafka,
  startRecordingServer,
  uniqueName,
} from '@sluice/testkit';
import { Pool } from 'undici';
import { gatewayYaml, tenantKeys } from '../src/harness.ts';
import { spawnStage } from './bare-pipeline.ts';
import { completeInBatches } from './batches.ts';
import { closedLoop, median } from './closed-loop.ts';

const seconds = Number(process.env.BENCH_SECONDS ?? 8);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 64);
const e2eRequests = Number(process.env.BENCH_E2E_REQUESTS ?? 10_000);
const adapter = process.env.KAFKA_CLIENT ?? 'platformatic';
const partitions = 6;

interface LoadResult {
  accepted: number;
  failed: number;
  perSecond: number;
  p50: number;
  p99: number;
}

/** Keeps `connections` submissions in flight for `durationMs` and measures every answer. */
async function load(url: string, durationMs: number, headers: Record<string, string>): Promise<LoadResult> {
  const body = JSON.stringify({
    route: 'e2e',
    method: 'POST',
    path: '/ok/bench',
    body: { sku: 'a-1', qty: 2 },
  });
  const figures = await closedLoop(url, {
    connections,
    durationMs,
    okStatus: 202,
    request: () => ({
      path: '/v1/requests',
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
    }),
  });
  const { ok, ...rest } = figures;
  return { ...rest, accepted: ok };
}

const kafka = await startKafka();
const upstream = await startRecordingServer((call, res) => {
  call.body = Buffer.alloc(0);
  echo(call, res);
});
// The recording server keeps calls; a benchmark must not grow memory with them.
setInterval(() => upstream.calls.splice(0), 1_000).unref();
const dir = await mkdtemp(join(tmpdir(), 'sluice-bench-'));
const configPath = join(dir, 'gateway.yaml');
await writeFile(configPath, gatewayYaml(upstream.url).replace('concurrency: 64', 'concurrency: 128'));
const prefix = `${uniqueName('bench')}.`;
const env = {
  KAFKA_BROKERS: kafka.bootstrap,
  KAFKA_CLIENT: adapter,
  KAFKA_TOPIC_PREFIX: prefix,
  KAFKA_TOPIC_PARTITIONS: String(partitions),
  SLUICE_GATEWAY_CONFIG: configPath,
  LOG_LEVEL: 'warn',
};
const client = createKafkaClient('platformatic', { brokers: kafka.brokers, clientId: 'bench' });
const admin = client.admin();
await provisionTopics(admin, topicSpecifications({ prefix, replicationFactor: 1, partitions }));
await admin.close();

console.log(
  `machine: ${availableParallelism()} cores (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}`,
);
console.log(
  `Kafka: ${kafka.source} at ${kafka.bootstrap}, adapter ${adapter}, ${partitions} partitions, acks=all, idempotent`,
);
console.log(
  `load: ${connections} connections, ${seconds} s per round, ${rounds} rounds per server, alternating\n`,
);

// End to end first, on empty topics: all four services, batches of requests against the local upstream.
const ingress = await ServiceProcess.start({ name: 'ingress', env });
await ingress.waitReady();
const others: ServiceProcess[] = [];
for (const name of serviceNames.filter((n) => n !== 'ingress'))
  others.push(await ServiceProcess.start({ name, env }));
await Promise.all(others.map((service) => service.waitReady(120_000)));
const auth = { authorization: `Bearer ${tenantKeys.acme}` };
const batchSize = 500;
const batches = Math.ceil(e2eRequests / batchSize);
const pool = new Pool(ingress.url, { connections: 8 });
const { submittedMs, completedMs } = await completeInBatches(pool, auth, {
  count: batches * batchSize,
  batchSize,
  request: (b, i) => ({ route: 'e2e', method: 'GET', path: `/ok/e2e-${b}-${i}` }),
});
const elapsed = completedMs / 1000;
console.log(
  `end to end: ${batches * batchSize} requests in ${batches} batches of ${batchSize}, submitted in ${(submittedMs / 1000).toFixed(1)} s, all terminal after ${elapsed.toFixed(1)} s: ${((batches * batchSize) / elapsed).toFixed(0)} completed requests/s\n`,
);
await pool.close();
// The accept benchmark measures the ingress alone, as the bare server runs alone.
await Promise.all(others.map((service) => service.stop('SIGTERM')));

const barePort = await freePort();
const bare = await spawnStage('bare-ingress.ts', { ...env, HTTP_PORT: String(barePort) });
const results: Record<'ingress' | 'bare', LoadResult[]> = { ingress: [], bare: [] };
// Warm both (JIT, connections, producer batches) before measuring.
await load(ingress.url, 2_000, auth);
await load(`http://127.0.0.1:${barePort}`, 2_000, {});
for (let round = 0; round < rounds; round += 1) {
  const order = round % 2 === 0 ? (['ingress', 'bare'] as const) : (['bare', 'ingress'] as const);
  for (const which of order) {
    const url = which === 'ingress' ? ingress.url : `http://127.0.0.1:${barePort}`;
    const result = await load(url, seconds * 1000, which === 'ingress' ? auth : {});
    results[which].push(result);
    console.log(
      `round ${round + 1} ${which.padEnd(7)} ${result.perSecond.toFixed(0).padStart(6)} accepted/s  p50 ${result.p50.toFixed(1)} ms  p99 ${result.p99.toFixed(1)} ms  (${result.accepted} accepted, ${result.failed} not)`,
    );
  }
}
bare.kill('SIGTERM');
const summary = (which: 'ingress' | 'bare') => ({
  perSecond: median(results[which].map((r) => r.perSecond)),
  p50: median(results[which].map((r) => r.p50)),
  p99: median(results[which].map((r) => r.p99)),
});
const ing = summary('ingress');
const base = summary('bare');
console.log('\n| server | accepted/s | p50 ms | p99 ms |\n| --- | ---: | ---: | ---: |');
console.log(
  `| ingress (Express, auth, validation, idempotency-ready) | ${ing.perSecond.toFixed(0)} | ${ing.p50.toFixed(1)} | ${ing.p99.toFixed(1)} |`,
);
console.log(
  `| bare node:http, same records, same client | ${base.perSecond.toFixed(0)} | ${base.p50.toFixed(1)} | ${base.p99.toFixed(1)} |`,
);
console.log(`\naccept throughput ratio ingress/bare: ${(ing.perSecond / base.perSecond).toFixed(2)}`);

await ingress.stop('SIGTERM');
await upstream.close();
await kafka.stop();
process.exit(0);
