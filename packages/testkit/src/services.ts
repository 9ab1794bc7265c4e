import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { freePort } from './net.ts';
import { repoRoot } from './paths.ts';

export const serviceNames = ['ingress', 'batch-worker', 'aggregator', 'delivery'] as const;
export type ServiceName = (typeof serviceNames)[number];

export interface ServiceProcessOptions {
  name: ServiceName;
  /** Environment on top of this process's own; HTTP_PORT is chosen unless given. */
  env: Record<string, string>;
  /** `source` runs the TypeScript directly (tests); `dist` runs the build output (the start command). */
  mode?: 'source' | 'dist';
  /** Echo the service's output to this process's stdout, prefixed with its name. */
  echo?: boolean;
  /** Another entry file instead of the service's own main (test fixtures built from the same runtime). */
  entry?: string;
  /** Options for node itself, before the entry file (e.g. `--cpu-prof` for `pnpm profile`). */
  nodeArgs?: string[];
}

export interface ServiceExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One service running as its own OS process, as it runs in production. */
export class ServiceProcess {
  readonly name: ServiceName;
  readonly port: number;
  readonly #child: ChildProcess;
  readonly #exited: Promise<ServiceExit>;
  #output = '';

  private constructor(name: ServiceName, port: number, child: ChildProcess, echo: boolean) {
    this.name = name;
    this.port = port;
    this.#child = child;
    const collect = (chunk: Buffer) => {
      const text = chunk.toString();
      this.#output += text;
      if (echo)
        for (const line of text.split('\n').filter(Boolean)) process.stdout.write(`[${name}] ${line}\n`);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    this.#exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  static async start(options: ServiceProcessOptions): Promise<ServiceProcess> {
    const port = Number(options.env.HTTP_PORT ?? (await freePort()));
    const dir = join(repoRoot(), 'services', options.name);
    const args = [
      ...(options.nodeArgs ?? []),
      ...(options.mode === 'dist'
        ? [options.entry ?? join(dir, 'dist', 'main.js')]
        : ['--conditions=sluice-source', options.entry ?? join(dir, 'src', 'main.ts')]),
    ];
    const child = spawn(process.execPath, args, {
      cwd: dir,
      env: {
        ...process.env,
        LOG_LEVEL: 'info',
        // The committed example configuration, unless the caller brings its own.
        SLUICE_GATEWAY_CONFIG: join(repoRoot(), 'deploy', 'gateway.example.yaml'),
        ...options.env,
        HTTP_PORT: String(port),
        HTTP_HOST: '127.0.0.1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new ServiceProcess(options.name, port, child, options.echo ?? false);
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Everything the service printed so far (JSON log lines). */
  output(): string {
    return this.#output;
  }

  get running(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** Polls /readyz until it answers 200; fails with the service's output if it exits or the time runs out. */
  async waitReady(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '(no answer)';
    while (Date.now() < deadline) {
      if (!this.running) {
        const exit = await this.#exited;
        throw new Error(`${this.name} exited (${exit.code ?? exit.signal}) before ready:\n${this.#tail()}`);
      }
      try {
        const response = await fetch(`${this.url}/readyz`, { signal: AbortSignal.timeout(1_000) });
        if (response.status === 200) return;
        last = await response.text();
      } catch {
        // Not listening yet.
      }
      await delay(100);
    }
    throw new Error(
      `${this.name} not ready within ${timeoutMs} ms (last /readyz: ${last}):\n${this.#tail(10)}`,
    );
  }

  /** Sends a signal and waits for the process to exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<ServiceExit> {
    if (this.running) this.#child.kill(signal);
    return await this.#exited;
  }

  exited(): Promise<ServiceExit> {
    return this.#exited;
  }

  #tail(lines = 40): string {
    return this.#output.split('\n').slice(-lines).join('\n');
  }
}

export interface StackOptions {
  kafkaBrokers: string;
  /** Shared by every service: topic prefix, adapter, partitions and so on. */
  env: Record<string, string>;
  mode?: 'source' | 'dist';
  echo?: boolean;
  /** Environment for one service only, e.g. HTTP_PORT of the ingress. */
  perService?: Partial<Record<ServiceName, Record<string, string>>>;
}

export interface Stack {
  services: Record<ServiceName, ServiceProcess>;
  stop(): Promise<void>;
}

/**
 * Starts the four services as separate processes against one broker and waits until each answers /readyz.
 * The ingress starts first so that it provisions the topics before the consumers join.
 */
export async function startStack(options: StackOptions): Promise<Stack> {
  const started: ServiceProcess[] = [];
  const stop = async () => {
    await Promise.all(started.map((service) => service.stop('SIGTERM')));
  };
  try {
    for (const name of serviceNames) {
      const service = await ServiceProcess.start({
        name,
        env: { KAFKA_BROKERS: options.kafkaBrokers, ...options.env, ...options.perService?.[name] },
        mode: options.mode ?? 'source',
        echo: options.echo ?? false,
      });
      started.push(service);
      if (name === 'ingress') await service.waitReady();
    }
    await Promise.all(started.map((service) => service.waitReady()));
  } catch (error) {
    await stop();
    throw error;
  }
  const services = Object.fromEntries(started.map((service) => [service.name, service])) as Record<
    ServiceName,
    ServiceProcess
  >;
  return { services, stop };
}
