import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { accessSync, constants, openSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { stopProcess, tail } from './kafka/jvm.ts';
import { freePort } from './net.ts';
import { cacheDir } from './paths.ts';

const run = promisify(execFile);
const host = '127.0.0.1';
const startTimeoutMs = 30_000;
const clusterTimeoutMs = 60_000;

/** A Redis server binary the test kit needs is missing or would not start. */
export class RedisUnavailableError extends Error {
  override readonly name = 'RedisUnavailableError';
}

export interface StartRedisOptions {
  /** Keep Redis's default snapshots and turn the append-only file on; off by default (a test server). */
  persistence?: boolean;
  /** Extra `redis-server` arguments, e.g. `['--maxmemory', '64mb']`. */
  args?: string[];
  env?: NodeJS.ProcessEnv;
}

/** One `redis-server` on a loopback port, with its own folder under the test kit's cache. */
export interface RedisServer {
  readonly host: string;
  readonly port: number;
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
  /** The process id while running. */
  pid(): number | undefined;
  /**
   * Sends a signal and waits for the exit (SIGKILL: a crash; the folder is kept for {@link restart}). SIGSTOP and
   * SIGCONT freeze and thaw the server instead (an unresponsive server that keeps its connections).
   */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the server again on the same port and folder after kill(); waits until it answers PING. */
  restart(): Promise<void>;
  /** Stops the server and removes its folder. */
  stop(): Promise<void>;
}

export interface RedisClusterHandle {
  /** The primaries, one per server, each owning a third of the slots. */
  readonly nodes: Array<{ host: string; port: number }>;
  readonly servers: RedisServer[];
  stop(): Promise<void>;
}

// Every server this process started, so that none outlives it even when a test fails before its cleanup.
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** Finds an executable on PATH (Debian installs redis-server and redis-cli in /usr/bin). */
export function findRedisBinary(
  name: 'redis-server' | 'redis-cli',
  env: NodeJS.ProcessEnv = process.env,
): string {
  for (const dir of (env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this folder: look in the next one.
    }
  }
  throw new RedisUnavailableError(
    `${name} not found on PATH: install Debian's redis-server package (apt-get install redis-server), which .ci/run does`,
  );
}

class RedisProcess implements RedisServer {
  readonly host = host;
  readonly port: number;
  readonly #dir: string;
  readonly #args: string[];
  readonly #binary: string;
  readonly #env: NodeJS.ProcessEnv;
  #child: ChildProcess | undefined;

  constructor(port: number, dir: string, args: string[], binary: string, env: NodeJS.ProcessEnv) {
    this.port = port;
    this.#dir = dir;
    this.#args = args;
    this.#binary = binary;
    this.#env = env;
  }

  get url(): string {
    return `redis://${host}:${this.port}`;
  }

  pid(): number | undefined {
    return this.#child?.pid;
  }

  async start(): Promise<void> {
    const logFile = join(this.#dir, 'redis.log');
    const out = openSync(logFile, 'a');
    const child = spawn(this.#binary, this.#args, {
      cwd: this.#dir,
      stdio: ['ignore', out, out],
      env: this.#env,
    });
    this.#child = child;
    running.add(child);
    const exited = new Promise<number | null>((resolve) =>
      child.once('exit', (code) => {
        running.delete(child);
        resolve(code);
      }),
    );
    const deadline = Date.now() + startTimeoutMs;
    while (Date.now() < deadline) {
      const state = await Promise.race([exited.then((code) => ({ code })), delay(50).then(() => undefined)]);
      if (state !== undefined) {
        throw new RedisUnavailableError(
          `redis-server on port ${this.port} exited with code ${state.code} while starting:\n${await tail(logFile, 30, '(no redis-server log)')}`,
        );
      }
      const reply = await redisCommand(this.port, ['PING']).catch(() => undefined);
      if (reply === 'PONG') return;
    }
    await stopProcess(child, 'SIGKILL');
    throw new RedisUnavailableError(
      `redis-server on port ${this.port} did not answer PING within ${startTimeoutMs} ms:\n${await tail(logFile, 30, '(no redis-server log)')}`,
    );
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    // A stopped or continued process does not exit: there is nothing to wait for.
    if (signal === 'SIGSTOP' || signal === 'SIGCONT') this.#child?.kill(signal);
    else await stopProcess(this.#child, signal);
  }

  async restart(): Promise<void> {
    await this.kill('SIGKILL');
    await this.start();
  }

  async stop(): Promise<void> {
    // A stopped (SIGSTOP) server cannot act on SIGTERM; SIGKILL ends it either way and nothing is kept.
    await stopProcess(this.#child, 'SIGKILL');
    await rm(this.#dir, { recursive: true, force: true });
  }
}

/**
 * Starts Debian's `redis-server` on a free loopback port, without snapshots or an append-only file unless asked,
 * and resolves once it answers PING over a real connection. Fails loudly when redis-server is missing.
 */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const env = options.env ?? process.env;
  const binary = findRedisBinary('redis-server', env);
  const root = join(cacheDir(env), 'redis');
  await mkdir(root, { recursive: true });
  const dir = await mkdtemp(join(root, 'server-'));
  const port = await freePort();
  const persistence = options.persistence ? ['--appendonly', 'yes'] : ['--save', '', '--appendonly', 'no'];
  const args = [
    '--port',
    String(port),
    '--bind',
    host,
    '--dir',
    dir,
    '--daemonize',
    'no',
    ...persistence,
    ...(options.args ?? []),
  ];
  const server = new RedisProcess(port, dir, args, binary, env);
  try {
    await server.start();
  } catch (error) {
    await server.stop();
    throw error;
  }
  return server;
}

/**
 * Starts `size` cluster-enabled servers, joins them with `redis-cli --cluster create` (no replicas) and resolves
 * once every node reports cluster_state:ok and knows every other node.
 */
export async function startRedisCluster(
  size = 3,
  options: StartRedisOptions = {},
): Promise<RedisClusterHandle> {
  const env = options.env ?? process.env;
  const cli = findRedisBinary('redis-cli', env);
  const servers: RedisServer[] = [];
  const stop = async () => {
    await Promise.all(servers.map((server) => server.stop()));
  };
  try {
    for (let i = 0; i < size; i += 1) {
      servers.push(
        await startRedis({
          ...options,
          env,
          args: [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            'nodes.conf',
            '--cluster-node-timeout',
            '5000',
            ...(options.args ?? []),
          ],
        }),
      );
    }
    const addresses = servers.map((server) => `${server.host}:${server.port}`);
    try {
      await run(cli, ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'], {
        env,
      });
    } catch (cause) {
      throw new RedisUnavailableError(`redis-cli --cluster create ${addresses.join(' ')} failed`, { cause });
    }
    const deadline = Date.now() + clusterTimeoutMs;
    for (const server of servers) {
      for (;;) {
        const info = await redisCommand(server.port, ['CLUSTER', 'INFO']).catch(() => '');
        if (info.includes('cluster_state:ok') && info.includes(`cluster_known_nodes:${size}`)) break;
        if (Date.now() > deadline) {
          throw new RedisUnavailableError(
            `the Redis cluster on ${addresses.join(', ')} did not reach cluster_state:ok within ${clusterTimeoutMs} ms (last CLUSTER INFO of port ${server.port}:\n${info})`,
          );
        }
        await delay(100);
      }
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { nodes: servers.map((server) => ({ host: server.host, port: server.port })), servers, stop };
}

/**
 * Sends one command over a fresh connection and resolves with its reply as text; an error reply, or no answer
 * within the timeout, rejects. For the test kit's readiness checks (PING, CLUSTER INFO).
 */
export async function redisCommand(port: number, args: string[], timeoutMs = 2_000): Promise<string> {
  const [command = 'PING', ...rest] = args;
  const client = new Redis({
    host,
    port,
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  // A refused connection rejects connect(); the event would only repeat it.
  client.on('error', () => {});
  try {
    await client.connect();
    return String(await client.call(command, ...rest));
  } finally {
    client.disconnect();
  }
}
