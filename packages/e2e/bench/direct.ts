/**
 * Direct mode against nginx. Prints figures; asserts nothing.
 *
 * One upstream (nginx answering at once), reached five ways, in alternating rounds of wrk (-t1, closed loop):
 * straight; through nginx as a reverse proxy (one worker, keep-alive toward the upstream); through the least
 * a Node proxy does with http-proxy-middleware and with undici (bare-proxy.ts, one process each); and through
 * one ingress process on a `mode: direct` route. The figure is direct mode ÷ the nginx proxy; the bare Node
 * proxies show each library's own ceiling on this machine.
 *
 *   pnpm --filter @sluice/e2e bench:direct      (starts a broker for the ingress unless KAFKA_BROKERS is set)
 *   BENCH_PROFILE_DIR=dir                          also writes the ingress's CPU profile there (node --cpu-prof)
 */

import { fork } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashApiKey } from '@sluice/gateway-config';
import { freePort, ServiceProcess, startKafka, uniqueName } from '@sluice/testkit';
import { answeringNginx, proxyingNginx } from './nginx.ts';
import { type WrkResult, wrk } from './wrk.ts';

const seconds = Number(process.env.BENCH_DIRECT_SECONDS ?? 5);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const profileDir = process.env.BENCH_PROFILE_DIR;

const upstream = await answeringNginx();
const proxy = await proxyingNginx(upstream.url);

async function bareProxy(kind: 'hpm' | 'undici') {
  const port = await freePort();
  const child = fork(new URL('./bare-proxy.ts', import.meta.url), [kind, upstream.url, String(port)], {
    stdio: 'ignore',
  });
  await new Promise((resolve) => child.once('message', resolve));
  return { url: `http://127.0.0.1:${port}`, stop: () => child.kill() };
}
const bareHpm = await bareProxy('hpm');
const bareUndici = await bareProxy('undici');
const kafka = await startKafka();
const dir = await mkdtemp(join(tmpdir(), 'sluice-bench-direct-'));
const configPath = join(dir, 'gateway.yaml');
const key = 'sk_bench_direct_0123456789';
await writeFile(
  configPath,
  `version: 1
tenants:
  acme:
    apiKeys: [{ id: bench, sha256: ${hashApiKey(key)} }]
    routes: [direct]
routes:
  direct:
    mode: direct
    concurrency: ${connections * 2}
    upstream: { targets: [{ url: "${upstream.url}" }] }
`,
);
const ingress = await ServiceProcess.start({
  name: 'ingress',
  mode: 'dist',
  env: {
    KAFKA_BROKERS: kafka.bootstrap,
    KAFKA_TOPIC_PREFIX: `${uniqueName('bench-direct')}.`,
    KAFKA_TOPIC_PARTITIONS: '1',
    SLUICE_GATEWAY_CONFIG: configPath,
    LOG_LEVEL: 'warn',
  },
  nodeArgs: profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [],
});
await ingress.waitReady();

const ways = {
  straight: () => wrk(`${upstream.url}/item`, { connections, seconds }),
  'nginx proxy': () => wrk(`${proxy.url}/item`, { connections, seconds }),
  'bare Node proxy, http-proxy-middleware': () => wrk(`${bareHpm.url}/item`, { connections, seconds }),
  'bare Node proxy, undici': () => wrk(`${bareUndici.url}/item`, { connections, seconds }),
  'direct mode': () =>
    wrk(`${ingress.url}/r/direct/item`, {
      connections,
      seconds,
      headers: { authorization: `Bearer ${key}` },
    }),
};
type Way = keyof typeof ways;
const results = new Map<Way, WrkResult[]>();
// A warm-up of each (JIT, connection pools), then rounds in alternating order.
for (const measure of Object.values(ways)) await measure();
for (let round = 0; round < rounds; round += 1) {
  const order = (Object.keys(ways) as Way[]).slice();
  if (round % 2 === 1) order.reverse();
  const line: string[] = [];
  for (const way of order) {
    const result = await ways[way]();
    results.set(way, [...(results.get(way) ?? []), result]);
    line.push(
      `${way} ${result.perSecond.toFixed(0)}/s p99 ${result.p99.toFixed(2)} ms${result.errors ? ` (${result.errors} errors)` : ''}`,
    );
  }
  console.log(`round ${round + 1}: ${line.join('; ')}`);
}
const median = (way: Way, pick: (r: WrkResult) => number) => {
  const values = (results.get(way) ?? []).map(pick).sort((a, b) => a - b);
  return values[Math.floor(values.length / 2)] ?? Number.NaN;
};
console.log(
  `\ndirect mode against nginx: wrk -t1 -c${connections}, ${seconds} s rounds, medians of ${rounds}; ${availableParallelism()} cores, Node ${process.version}`,
);
console.log('| path | requests/s | p50 ms | p99 ms |\n| --- | ---: | ---: | ---: |');
for (const way of Object.keys(ways) as Way[]) {
  console.log(
    `| ${way} | ${median(way, (r) => r.perSecond).toFixed(0)} | ${median(way, (r) => r.p50).toFixed(2)} | ${median(way, (r) => r.p99).toFixed(2)} |`,
  );
}
const ratio = (way: Way) =>
  (median(way, (r) => r.perSecond) / median('nginx proxy', (r) => r.perSecond)).toFixed(2);
console.log(`direct mode ÷ nginx reverse proxy: ${ratio('direct mode')}`);
console.log(
  `bare Node proxies ÷ nginx reverse proxy: http-proxy-middleware ${ratio('bare Node proxy, http-proxy-middleware')}, undici ${ratio('bare Node proxy, undici')}`,
);
bareHpm.stop();
bareUndici.stop();
await ingress.stop();
await Promise.all([proxy.stop(), upstream.stop(), kafka.stop()]);
process.exit(0);
