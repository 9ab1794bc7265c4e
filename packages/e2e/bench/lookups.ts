/**
 * The lookup benchmark: GET /v1/requests/{id} against an ingress on the embedded store and one on Redis, in
 * alternating rounds so that noise hits both alike. Prints lookups/s, p50 and p99 (medians of the rounds) and
 * the ratio Redis/embedded; asserts nothing.
 *
 *   pnpm --filter @sluice/e2e bench:lookups     (starts a broker and a redis-server unless KAFKA_BROKERS is set)
 *   BENCH_SECONDS=10 BENCH_CONNECTIONS=64 BENCH_LOOKUP_IDS=5000 ...
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServiceProcess, startKafka, startRedis, uniqueName } from '@sluice/testkit';
import { Pool } from 'undici';
import { gatewayYaml, tenantKeys } from '../src/harness.ts';
import { closedLoop, median } from './closed-loop.ts';

const seconds = Number(process.env.BENCH_SECONDS ?? 6);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 32);
const idCount = Number(process.env.BENCH_LOOKUP_IDS ?? 2_000);
const authorization = `Bearer ${tenantKeys.acme}`;

const kafka = await startKafka();
const redis = await startRedis();
const dir = await mkdtemp(join(tmpdir(), 'sluice-bench-lookups-'));
const configPath = join(dir, 'gateway.yaml');
// No upstream is called: requests stay queued, which is all a lookup needs.
await writeFile(configPath, gatewayYaml('http://127.0.0.1:9'));

async function ingress(state: Record<string, string>): Promise<ServiceProcess> {
  const service = await ServiceProcess.start({
    name: 'ingress',
    mode: 'dist',
    env: {
      KAFKA_BROKERS: kafka.bootstrap,
      KAFKA_TOPIC_PREFIX: `${uniqueName('bench-lookups')}.`,
      KAFKA_TOPIC_PARTITIONS: '6',
      SLUICE_GATEWAY_CONFIG: configPath,
      LOG_LEVEL: 'warn',
      ...state,
    },
  });
  await service.waitReady(90_000);
  return service;
}

/** Submits `idCount` requests and returns their ids. */
async function seed(url: string): Promise<string[]> {
  const pool = new Pool(url, { connections: 16 });
  const ids: string[] = [];
  const body = JSON.stringify({ route: 'e2e', method: 'GET', path: '/ok/bench' });
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (ids.length < idCount) {
        const response = await pool.request({
          path: '/v1/requests',
          method: 'POST',
          headers: { authorization, 'content-type': 'application/json' },
          body,
        });
        const { id } = (await response.body.json()) as { id: string };
        ids.push(id);
      }
    }),
  );
  await pool.close();
  return ids;
}

async function lookups(url: string, ids: string[]) {
  return await closedLoop(url, {
    connections,
    durationMs: seconds * 1000,
    okStatus: 200,
    request: (client, n) => ({
      path: `/v1/requests/${ids[(client + n * connections) % ids.length]}`,
      method: 'GET',
      headers: { authorization },
    }),
  });
}

const services = {
  embedded: await ingress({ STATE_STORE: 'embedded' }),
  redis: await ingress({
    STATE_STORE: 'redis',
    REDIS_URL: redis.url,
    REDIS_KEY_PREFIX: `${uniqueName('bench')}:`,
  }),
};
try {
  const ids = { embedded: await seed(services.embedded.url), redis: await seed(services.redis.url) };
  const results: Record<keyof typeof services, Array<Awaited<ReturnType<typeof lookups>>>> = {
    embedded: [],
    redis: [],
  };
  for (let round = 0; round < rounds; round += 1) {
    for (const name of ['embedded', 'redis'] as const) {
      results[name].push(await lookups(services[name].url, ids[name]));
    }
  }
  console.log(
    `\nGET /v1/requests/{id}: ${idCount} ids, ${connections} connections, ${rounds} × ${seconds} s rounds`,
  );
  const summary: Record<string, number> = {};
  for (const name of ['embedded', 'redis'] as const) {
    const perSecond = median(results[name].map((r) => r.perSecond));
    summary[name] = perSecond;
    const failed = results[name].reduce((sum, r) => sum + r.failed, 0);
    console.log(
      `  ${name.padEnd(8)} ${Math.round(perSecond).toLocaleString('en')} lookups/s, p50 ${median(results[name].map((r) => r.p50)).toFixed(1)} ms, p99 ${median(results[name].map((r) => r.p99)).toFixed(1)} ms, ${failed} failed`,
    );
  }
  console.log(`  ratio redis/embedded: ${((summary.redis ?? 0) / (summary.embedded ?? 1)).toFixed(2)}`);
} finally {
  await Promise.all(Object.values(services).map((service) => service.stop()));
  await redis.stop();
  await kafka.stop();
}
