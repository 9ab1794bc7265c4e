/**
 * Redis commands per request as ingress replicas are added. Prints figures; asserts nothing.
 *
 * The four services on one broker with STATE_STORE=redis, for each way the status topic reaches the store
 * (STATUS_FEED=every-replica: each replica applies every status; shared: one group of all replicas, each status
 * applied once). With 1, 2 and 4 ingress replicas, N requests are accepted round-robin over the replicas and run
 * to the end; the Redis commands the server counted meanwhile (INFO commandstats, less the idle rate measured just
 * before: the replicas' periodic checks) are divided by N.
 *
 *   pnpm --filter @sluice/e2e bench:redis-replicas
 *   BENCH_REDIS_REQUESTS=2000 BENCH_REDIS_REPLICAS=1,2,4
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { echo, startKafka, startRedis, uniqueName } from '@sluice/testkit';
import { startStack } from '../src/harness.ts';
import { benchRoutes, loadTargets } from './loads.ts';
import { answeringNginx } from './nginx.ts';
import { commandsBetween, redisCommandCount, redisCommandStats } from './redis-stats.ts';

const requests = Number(process.env.BENCH_REDIS_REQUESTS ?? 2_000);
const replicaCounts = (process.env.BENCH_REDIS_REPLICAS ?? '1,2,4').split(',').map(Number);
const concurrency = 32;
const feeds = ['every-replica', 'shared'] as const;

const nginx = await answeringNginx();
const kafka = await startKafka({ forceJvm: true });
const redis = await startRedis();

/** Commands per second while nothing is submitted: the replicas' own periodic work. */
async function idleRate(seconds: number): Promise<number> {
  const before = await redisCommandCount(redis.url);
  await sleep(seconds * 1_000);
  return ((await redisCommandCount(redis.url)) - before) / seconds;
}

async function run(ingresses: string[]): Promise<number> {
  const targets = ingresses.map((url) => loadTargets(url));
  const background = await idleRate(3);
  const stats = await redisCommandStats(redis.url);
  const before = await redisCommandCount(redis.url);
  const startedAt = Date.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < requests; i = next++) {
        const { target } = (targets[i % targets.length] as (typeof targets)[number]).accept;
        const response = await fetch(target.url, {
          method: 'POST',
          headers: target.headers,
          body: target.body ?? null,
        });
        // 200: the request was finished by the time the ingress looked its status up to answer.
        if (response.status !== 202 && response.status !== 200) {
          throw new Error(`submission answered ${response.status}`);
        }
        await response.arrayBuffer();
      }
    }),
  );
  // A request sent last with Prefer: wait answers once the workers are through what came before it.
  const { target } = (targets[0] as (typeof targets)[number]).accept;
  await (
    await fetch(target.url, {
      method: 'POST',
      headers: { ...target.headers, prefer: 'wait=120' },
      body: target.body ?? null,
    })
  ).arrayBuffer();
  // Then until every replica's feed has applied the last statuses: the rate falls back to the idle one.
  for (let quiet = 0; quiet < 2; ) {
    const rate = await idleRate(1);
    quiet = rate <= background * 1.5 + 5 ? quiet + 1 : 0;
  }
  const elapsedSeconds = (Date.now() - startedAt) / 1_000;
  const total = (await redisCommandCount(redis.url)) - before;
  const byCommand = commandsBetween(stats, await redisCommandStats(redis.url));
  console.log(
    `  by command, per request (idle work included): ${byCommand.map(([name, count]) => `${name} ${(count / requests).toFixed(2)}`).join(', ')}`,
  );
  return (total - background * elapsedSeconds) / requests;
}

const results: Record<string, Record<number, number>> = {};
for (const feed of feeds) {
  const stack = await startStack({
    brokers: kafka.bootstrap,
    upstream: echo,
    env: {
      KAFKA_TOPIC_PARTITIONS: '6',
      LOG_LEVEL: 'warn',
      STATE_STORE: 'redis',
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: `${uniqueName('bench')}:`,
      STATUS_FEED: feed,
    },
    routes: benchRoutes(nginx.url),
  });
  try {
    const ingresses = [stack.ingress];
    results[feed] = {};
    for (const count of replicaCounts) {
      while (ingresses.length < count) ingresses.push((await stack.spawn('ingress')).url);
      const perRequest = await run(ingresses);
      (results[feed] as Record<number, number>)[count] = perRequest;
      console.log(
        `STATUS_FEED=${feed}, ${count} ingress replica(s): ${perRequest.toFixed(2)} Redis commands per request`,
      );
    }
  } finally {
    await stack.stop();
  }
}

console.log(
  `\n${requests} accepted requests per step, ${concurrency} clients, round-robin over the replicas`,
);
console.log(
  '| STATUS_FEED | ' +
    replicaCounts.map((n) => `${n} replica${n > 1 ? 's' : ''}`).join(' | ') +
    ` | ${replicaCounts.at(-1)} ÷ ${replicaCounts[0]} |`,
);
console.log(`|---|${replicaCounts.map(() => '---|').join('')}---|`);
for (const feed of feeds) {
  const row = results[feed] as Record<number, number>;
  const first = row[replicaCounts[0] as number] as number;
  const last = row[replicaCounts.at(-1) as number] as number;
  console.log(
    `| ${feed} | ${replicaCounts.map((n) => (row[n] as number).toFixed(2)).join(' | ')} | ${(last / first).toFixed(2)} |`,
  );
}

await redis.stop();
await kafka.stop();
await nginx.stop();
