import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { freePort } from './net.ts';
import { cacheDir } from './paths.ts';

/**
 * Jaeger v2 is the Go module github.com/jaegertracing/jaeger (v2 releases carry module versions v1.6x+): this one
 * is Jaeger 2.13. It is built once from the Go module proxy into .cache/tools (no container image, no other
 * download site), because `go install …@version` refuses a module whose go.mod has replace directives.
 */
export const jaegerModuleVersion = 'v1.76.0';

export function jaegerBinary(): string {
  return join(cacheDir(), 'tools', 'bin', `jaeger-${jaegerModuleVersion}`);
}

export function ensureJaeger(log: (line: string) => void = console.log): string {
  const binary = jaegerBinary();
  if (existsSync(binary)) return binary;
  const go = spawnSync('sh', ['-c', 'command -v go'], { encoding: 'utf8' }).stdout.trim();
  if (go === '') throw new Error('building Jaeger needs Go (the go command) on PATH');
  log(`building Jaeger (module ${jaegerModuleVersion}) from the Go module proxy; once, into .cache/tools`);
  const download = spawnSync(
    go,
    ['mod', 'download', '-json', `github.com/jaegertracing/jaeger@${jaegerModuleVersion}`],
    {
      encoding: 'utf8',
    },
  );
  if (download.status !== 0) throw new Error(`go mod download failed:\n${download.stderr}`);
  const dir = (JSON.parse(download.stdout) as { Dir: string }).Dir;
  mkdirSync(dirname(binary), { recursive: true });
  const build = spawnSync(go, ['build', '-o', binary, './cmd/jaeger'], {
    cwd: dir,
    env: { ...process.env, GOFLAGS: '-mod=mod' },
    stdio: 'inherit',
  });
  if (build.status !== 0) throw new Error('go build of Jaeger failed');
  return binary;
}

export interface JaegerHandle {
  /** OTLP http/protobuf endpoint for OTEL_EXPORTER_OTLP_ENDPOINT. */
  otlpEndpoint: string;
  /** Base URL of the query API and UI. */
  queryUrl: string;
  stop(): Promise<void>;
}

/** Runs Jaeger v2 on loopback (in-memory storage) and waits until its query API answers. */
export async function startJaeger(binary = ensureJaeger()): Promise<JaegerHandle> {
  const [otlp, grpc, query] = [await freePort(), await freePort(), await freePort()];
  const dir = join(cacheDir(), 'jaeger-run');
  await mkdir(dir, { recursive: true });
  const config = join(dir, `config-${process.pid}.yaml`);
  await writeFile(
    config,
    [
      'service:',
      '  extensions: [jaeger_storage, jaeger_query]',
      '  telemetry: { logs: { level: warn }, metrics: { level: none } }',
      '  pipelines:',
      '    traces: { receivers: [otlp], processors: [batch], exporters: [jaeger_storage_exporter] }',
      'extensions:',
      `  jaeger_query: { storage: { traces: memstore }, http: { endpoint: "127.0.0.1:${query}" }, grpc: { endpoint: "127.0.0.1:${grpc}" } }`,
      '  jaeger_storage: { backends: { memstore: { memory: { max_traces: 100000 } } } }',
      'receivers:',
      `  otlp: { protocols: { http: { endpoint: "127.0.0.1:${otlp}" } } }`,
      'processors: { batch: {} }',
      'exporters: { jaeger_storage_exporter: { trace_storage: memstore } }',
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(binary, ['--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    output += chunk;
  });
  const queryUrl = `http://127.0.0.1:${query}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`Jaeger exited (${child.exitCode}):\n${output.slice(-2000)}`);
    try {
      if ((await fetch(`${queryUrl}/api/services`)).ok) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) throw new Error(`Jaeger did not answer within 60 s:\n${output.slice(-2000)}`);
    await delay(200);
  }
  return {
    otlpEndpoint: `http://127.0.0.1:${otlp}`,
    queryUrl,
    stop: async () => {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((resolve) => child.once('exit', resolve));
      }
    },
  };
}
