/**
 * Sustained completed requests per second, all four services, this checkout against an earlier main built and run
 * alternately on one broker. Prints figures; asserts nothing.
 *
 * The baseline is BENCH_BASELINE_REF (default 33982e4: main as it was when issue 12 measured "about 1,000 requests/s"),
 * checked out once as a git worktree under .cache/bench-baseline and installed with the lockfile of its own. Each
 * round starts the four services of one side on fresh topics, submits BENCH_VERSUS_REQUESTS requests in batches of
 * 500 (GET on a local echo upstream) and times until every request is terminal; the sides alternate ABBA so that a
 * machine that gets slower over the run hurts both alike. The gateway file is the subset both versions read.
 *
 *   pnpm --filter @sluice/e2e bench:versus-main
 *   BENCH_BASELINE_REF=<commit> BENCH_VERSUS_REQUESTS=10000 BENCH_VERSUS_ROUNDS=3
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashApiKey } from '@sluice/gateway-config';
import {
  echo,
  repoRoot,
  ServiceProcess,
  serviceNames,
  startKafka,
  startRecordingServer,
  uniqueName,
} from '@sluice/testkit';
import { Pool } from 'undici';
import { tenantKeys } from '../src/harness.ts';
import { completeInBatches } from './batches.ts';
import { median } from './closed-loop.ts';

const baselineRef = process.env.BENCH_BASELINE_REF ?? '33982e4';
const requests = Number(process.env.BENCH_VERSUS_REQUESTS ?? 10_000);
const rounds = Number(process.env.BENCH_VERSUS_ROUNDS ?? 3);
const batchSize = 500;

/** The baseline's tree: a worktree of the ref with its own dependencies, made once. */
function baselineTree(): string {
  const root = repoRoot();
  const sha = execFileSync('git', ['rev-parse', '--short', `${baselineRef}^{commit}`], { cwd: root })
    .toString()
    .trim();
  const dir = join(root, '.cache', 'bench-baseline', sha);
  if (!existsSync(join(dir, 'node_modules'))) {
    console.log(`checking out ${sha} into ${dir} and installing its dependencies (once)`);
    if (!existsSync(dir))
      execFileSync('git', ['worktree', 'add', '--detach', dir, sha], { cwd: root, stdio: 'ignore' });
    execFileSync('pnpm', ['install', '--frozen-lockfile', '--prefer-offline'], { cwd: dir, stdio: 'ignore' });
  }
  return dir;
}

const baseline = baselineTree();
const kafka = await startKafka({ forceJvm: true });
const upstream = await startRecordingServer((call, res) => {
  call.body = Buffer.alloc(0);
  echo(call, res);
});
// The recording server keeps calls; a benchmark must not grow memory with them.
setInterval(() => upstream.calls.splice(0), 1_000).unref();
const dir = await mkdtemp(join(tmpdir(), 'sluice-versus-'));
await mkdir(dir, { recursive: true });
const configPath = join(dir, 'gateway.yaml');
// Only keys both versions know: the gateway file is a strict schema in each.
await writeFile(
  configPath,
  `version: 1
tenants:
  acme:
    apiKeys: [{ id: acme-bench, sha256: ${hashApiKey(tenantKeys.acme)} }]
    routes: [e2e]
routes:
  e2e:
    upstream: { targets: [{ url: "${upstream.url}" }] }
    concurrency: 128
`,
);

/** One round: the four services of one side on fresh topics, `requests` submitted in batches, until all terminal. */
async function round(side: 'baseline' | 'current'): Promise<number> {
  const env = {
    KAFKA_BROKERS: kafka.bootstrap,
    KAFKA_TOPIC_PREFIX: `${uniqueName(`versus-${side}`)}.`,
    KAFKA_TOPIC_PARTITIONS: '6',
    SLUICE_GATEWAY_CONFIG: configPath,
    LOG_LEVEL: 'warn',
  };
  const entry = (name: string) =>
    side === 'baseline' ? { entry: join(baseline, 'services', name, 'src', 'main.ts') } : {};
  const ingress = await ServiceProcess.start({ name: 'ingress', env, ...entry('ingress') });
  await ingress.waitReady(120_000);
  const others = await Promise.all(
    serviceNames
      .filter((name) => name !== 'ingress')
      .map((name) => ServiceProcess.start({ name, env, ...entry(name) })),
  );
  await Promise.all(others.map((service) => service.waitReady(120_000)));
  const auth = { authorization: `Bearer ${tenantKeys.acme}` };
  const pool = new Pool(ingress.url, { connections: 8 });
  const { completedMs } = await completeInBatches(pool, auth, {
    count: requests,
    batchSize,
    request: (b, i) => ({ route: 'e2e', method: 'GET', path: `/ok/${side}-${b}-${i}` }),
  });
  const perSecond = requests / (completedMs / 1000);
  await pool.close();
  await Promise.all([ingress, ...others].map((service) => service.stop('SIGTERM')));
  return perSecond;
}

console.log(
  `machine: ${availableParallelism()} cores, Node ${process.version}; baseline ${baselineRef}; ${requests} requests per round in batches of ${batchSize}\n`,
);
const results: Record<'baseline' | 'current', number[]> = { baseline: [], current: [] };
// A warm-up round of each is not counted: the broker's first topics and the JIT are slower than the rest.
await round('baseline');
await round('current');
for (let r = 0; r < rounds; r += 1) {
  for (const side of r % 2 === 0 ? (['baseline', 'current'] as const) : (['current', 'baseline'] as const)) {
    const perSecond = await round(side);
    results[side].push(perSecond);
    console.log(`round ${r + 1} ${side.padEnd(8)} ${perSecond.toFixed(0).padStart(6)} completed requests/s`);
  }
}
const baselineMedian = median(results.baseline);
const currentMedian = median(results.current);
console.log(
  `\nsustained completed requests/s: current ${currentMedian.toFixed(0)}, baseline ${baselineMedian.toFixed(0)} (medians): **${(currentMedian / baselineMedian).toFixed(2)}×**`,
);
await kafka.stop();
await upstream.close();
process.exit(0);
