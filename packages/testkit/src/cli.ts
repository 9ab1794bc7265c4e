import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { echo, startRecordingServer } from './http-servers.ts';
import { ensureJaeger, startJaeger } from './jaeger.ts';
import { startKafka } from './kafka/launcher.ts';
import { KafkaUnavailableError } from './kafka/types.ts';
import { cacheDir, repoRoot } from './paths.ts';
import { startStack } from './services.ts';
import { clearResults, summariseResults } from './test-results.ts';

/**
 * The project's command line: `kafka:up`, `kafka:down`, `start` and `test` (the root package.json's scripts).
 */
const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    brokers: { type: 'string', default: '1' },
    port: { type: 'string', default: process.env.INGRESS_PORT ?? '8080' },
    // The demo upstream that deploy/gateway.example.yaml's route "echo" points at.
    'upstream-port': { type: 'string', default: '8089' },
    // For tests that already built; the README's start command always builds (turbo caches it).
    'skip-build': { type: 'boolean', default: false },
  },
});

const stateFile = () => join(cacheDir(), 'kafka', 'running.json');

interface RunningKafka {
  bootstrap: string;
  nodes: Array<{ pid: number | undefined; dataDir: string }>;
}

async function kafkaUp(): Promise<number> {
  if (process.env.KAFKA_BROKERS) {
    console.log(`KAFKA_BROKERS is set; using ${process.env.KAFKA_BROKERS}`);
    return 0;
  }
  if (existsSync(stateFile())) {
    const running = JSON.parse(await readFile(stateFile(), 'utf8')) as RunningKafka;
    console.log(`Kafka already running: KAFKA_BROKERS=${running.bootstrap} (pnpm kafka:down stops it)`);
    return 0;
  }
  const brokers = values.brokers === '3' ? 3 : 1;
  // Detached JVM brokers outlive this command; with Docker, `docker compose up -d kafka` plays this role.
  const handle = await startKafka({ brokers, forceJvm: true, detached: true });
  const running: RunningKafka = {
    bootstrap: handle.bootstrap,
    nodes: handle.processes?.() ?? [],
  };
  await mkdir(join(cacheDir(), 'kafka'), { recursive: true });
  await writeFile(stateFile(), JSON.stringify(running, null, 2));
  console.log(`Kafka ${brokers === 3 ? 'cluster' : 'broker'} started.\nKAFKA_BROKERS=${handle.bootstrap}`);
  return 0;
}

async function kafkaDown(): Promise<number> {
  if (!existsSync(stateFile())) {
    console.log('no Kafka started by `pnpm kafka:up` is running');
    return 0;
  }
  const running = JSON.parse(await readFile(stateFile(), 'utf8')) as RunningKafka;
  for (const node of running.nodes) {
    if (node.pid !== undefined) signal(node.pid, 'SIGTERM');
  }
  for (const node of running.nodes) {
    const deadline = Date.now() + 30_000;
    while (node.pid !== undefined && alive(node.pid) && Date.now() < deadline) await delay(100);
    if (node.pid !== undefined && alive(node.pid)) signal(node.pid, 'SIGKILL');
    await rm(node.dataDir, { recursive: true, force: true });
  }
  await rm(stateFile(), { force: true });
  console.log('Kafka stopped and its data deleted');
  return 0;
}

async function start(): Promise<number> {
  const root = repoRoot();
  const built = await run(join(root, 'node_modules', '.bin', 'turbo'), [
    'run',
    'build',
    '--output-logs=errors-only',
  ]);
  if (built !== 0) return built;
  const upstream = await startRecordingServer(echo, { port: Number(values['upstream-port']) });
  console.log(`Demo upstream (echo) at ${upstream.url}`);
  const kafka = await startKafka();
  console.log(`Kafka (${kafka.source}) at ${kafka.bootstrap}`);
  let stack: Awaited<ReturnType<typeof startStack>>;
  try {
    stack = await startStack({
      kafkaBrokers: kafka.bootstrap,
      env: { LOG_LEVEL: process.env.LOG_LEVEL ?? 'info' },
      perService: { ingress: { HTTP_PORT: String(values.port) } },
      mode: 'dist',
      echo: true,
    });
  } catch (error) {
    await kafka.stop();
    await upstream.close();
    throw error;
  }
  for (const service of Object.values(stack.services)) console.log(`${service.name} ready at ${service.url}`);
  console.log(`\nSluice is up. Ingress listening on ${stack.services.ingress.url} (Ctrl-C stops everything)`);
  console.log(
    `Try: curl -s -H 'Authorization: Bearer sk_sluice_demo_acme' -H 'Content-Type: application/json' -H 'Prefer: wait=10' \\\n` +
      `  -d '{"route":"echo","method":"POST","path":"/hello","body":{"hi":1}}' ${stack.services.ingress.url}/v1/requests`,
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  console.log('stopping services, then Kafka');
  await stack.stop();
  await kafka.stop();
  await upstream.close();
  return 0;
}

/**
 * Checks traces against a real Jaeger v2: builds it once from the Go module proxy, runs it on loopback, sends a
 * request through the four services and polls Jaeger's query API until the request's trace holds all four.
 */
async function jaegerCheck(): Promise<number> {
  const root = repoRoot();
  const built = await run(join(root, 'node_modules', '.bin', 'turbo'), [
    'run',
    'build',
    '--output-logs=errors-only',
  ]);
  if (built !== 0) return built;
  const jaeger = await startJaeger(ensureJaeger());
  console.log(`Jaeger v2 at ${jaeger.queryUrl} (OTLP in at ${jaeger.otlpEndpoint})`);
  const upstream = await startRecordingServer(echo, { port: Number(values['upstream-port']) });
  const kafka = await startKafka();
  let stack: Awaited<ReturnType<typeof startStack>> | undefined;
  try {
    stack = await startStack({
      kafkaBrokers: kafka.bootstrap,
      env: {
        KAFKA_TOPIC_PREFIX: `jaeger-check-${Date.now()}.`,
        KAFKA_TOPIC_PARTITIONS: '1',
        OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlpEndpoint,
        TRACES_EXPORT_DELAY_MS: '200',
        LOG_LEVEL: 'warn',
      },
      mode: 'dist',
    });
    const response = await fetch(`${stack.services.ingress.url}/v1/requests`, {
      method: 'POST',
      headers: {
        authorization: 'Bearer sk_sluice_demo_acme',
        'content-type': 'application/json',
        prefer: 'wait=20',
      },
      body: JSON.stringify({ route: 'echo', method: 'POST', path: '/traced', body: { check: true } }),
    });
    const id = response.headers.get('sluice-request-id') ?? '';
    console.log(`request ${id} answered ${response.status}; looking for its trace in Jaeger`);
    const tags = encodeURIComponent(JSON.stringify({ 'sluice.request_id': id }));
    const wanted = ['sluice-ingress', 'sluice-batch-worker', 'sluice-aggregator', 'sluice-delivery'];
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const found = (await (
        await fetch(`${jaeger.queryUrl}/api/traces?service=sluice-ingress&tags=${tags}&lookback=1h&limit=5`)
      ).json()) as {
        data?: Array<{
          traceID: string;
          spans: unknown[];
          processes: Record<string, { serviceName: string }>;
        }>;
      };
      for (const trace of found.data ?? []) {
        const services = new Set(Object.values(trace.processes).map((process) => process.serviceName));
        if (wanted.every((service) => services.has(service))) {
          console.log(
            `trace ${trace.traceID}: ${trace.spans.length} spans from ${[...services].sort().join(', ')}`,
          );
          console.log(`Jaeger check passed: ${jaeger.queryUrl}/trace/${trace.traceID}`);
          return 0;
        }
      }
      await delay(500);
    }
    console.error('Jaeger check failed: no trace with all four services within 60 s');
    return 1;
  } finally {
    await stack?.stop();
    await kafka.stop();
    await upstream.close();
    await jaeger.stop();
  }
}

async function test(): Promise<number> {
  const root = repoRoot();
  const turbo = join(root, 'node_modules', '.bin', 'turbo');
  const biome = join(root, 'node_modules', '.bin', 'biome');
  const steps: Array<[string, string, string[]]> = [
    ['lint and format', biome, ['ci', '.']],
    ['typecheck and build', turbo, ['run', 'typecheck', 'build', '--output-logs=errors-only']],
  ];
  for (const [name, command, args] of steps) {
    console.log(`\n== ${name}`);
    const code = await run(command, args);
    if (code !== 0) {
      console.error(`${name} failed`);
      return code;
    }
  }
  console.log('\n== Kafka for the test run');
  const kafka = await startKafka();
  console.log(`Kafka (${kafka.source}) at ${kafka.bootstrap}`);
  let code: number;
  try {
    console.log('\n== unit, integration and end-to-end tests');
    // Reports of earlier runs must not count; turbo restores a cached workspace's report itself.
    await clearResults(root);
    code = await run(turbo, ['run', 'test', '--concurrency=2', '--continue', '--output-logs=full'], {
      ...process.env,
      KAFKA_BROKERS: kafka.bootstrap,
    });
  } finally {
    await kafka.stop();
  }
  const summary = await summariseResults(root);
  console.log(`\n${summary.files} test files in ${summary.workspaces} workspaces`);
  console.log(`${summary.passed} passed, ${summary.failed} failed`);
  return code !== 0 || summary.failed > 0 || summary.passed === 0 ? 1 : 0;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: repoRoot(), stdio: 'inherit', env });
    child.once('error', reject);
    child.once('exit', (code, sig) => resolve(code ?? (sig ? 1 : 0)));
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function signal(pid: number, name: NodeJS.Signals): void {
  if (alive(pid)) process.kill(pid, name);
}

const commands: Record<string, () => Promise<number>> = {
  'kafka:up': kafkaUp,
  'kafka:down': kafkaDown,
  start,
  test,
  'jaeger:check': jaegerCheck,
};

const command = commands[positionals[0] ?? ''];
if (command === undefined) {
  console.error(`usage: cli.ts <${Object.keys(commands).join('|')}> [--brokers 1|3] [--port N]`);
  process.exit(2);
}
command().then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof KafkaUnavailableError) console.error(error.message);
    else console.error(error);
    process.exit(1);
  },
);
