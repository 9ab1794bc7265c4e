import { createHash } from 'node:crypto';
import type { StatusMessage } from '@sluice/contracts';
import { Cluster, type ClusterNode, Redis, type RedisOptions } from 'ioredis';
import { isUnavailability, replyCode, StateUnavailableError } from './redis-errors.ts';
import { RedisKeys } from './redis-keys.ts';
import {
  applyStatusesLua,
  claimKeyLua,
  decodeStatus,
  encodeStatus,
  pointRequestLua,
  rateLimitLua,
  releaseKeyLua,
} from './redis-scripts.ts';
import { StatusSubscriptions } from './redis-subscriptions.ts';
import type {
  IdempotencyClaim,
  IdempotencyScope,
  RateLimitDecision,
  RateLimitRule,
  StateStore,
  StatusListener,
} from './types.ts';

export interface RedisStateStoreOptions {
  /**
   * One Redis or Valkey server: `redis://[[user]:password@]host:port[/db]`, `rediss://` for TLS. Exactly one
   * of `url` and `nodes`.
   */
  url?: string;
  /** Some nodes of a Redis Cluster (`host:port` or objects); the client discovers the rest. */
  nodes?: ClusterNode[];
  /** Credentials and TLS for cluster nodes (a url carries its own). */
  username?: string;
  password?: string;
  tls?: boolean;
  /** Prepended to every key and channel, so that deployments and tests can share a server. Default `sluice:`. */
  keyPrefix?: string;
  /** Statuses accepted longer ago than this are forgotten (lookups answer 404). Default 24 h. */
  retentionMs?: number;
  /** How long a command may take before it fails with StateUnavailableError. Default 2 s. */
  commandTimeoutMs?: number;
  /** Upper bound of the backoff between reconnection attempts. Default 2 s. */
  maxReconnectDelayMs?: number;
  /**
   * The store's clock, for tests. When given it also replaces the server's TIME as the rate limiter's clock
   * (sent with each call), and retention and idempotency expiry are decided against it on every read; real
   * TTLs are still set so that memory is freed. Leave it out in deployments: replicas then share the server's
   * clock for rate limits whatever their own clocks say.
   */
  now?: () => number;
  /** Connection errors (the store retries by itself) and failures of subscription listeners; for logs. */
  onError?(error: unknown): void;
}

const defaults = {
  keyPrefix: 'sluice:',
  retentionMs: 24 * 60 * 60 * 1000,
  commandTimeoutMs: 2_000,
  maxReconnectDelayMs: 2_000,
};

/** Statuses per script call: a batch of thousands is applied in several atomic steps, each bounded in time. */
const statusesPerScript = 200;

/** A bucket outlives the moment it is full by this much when the clock is injected (a test's clock may lag). */
const injectedClockGraceMs = 60_000;

interface LuaScript {
  readonly lua: string;
  readonly sha: string;
}

function script(lua: string): LuaScript {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') };
}

const scripts = {
  applyStatuses: script(applyStatusesLua),
  pointRequest: script(pointRequestLua),
  claimKey: script(claimKeyLua),
  releaseKey: script(releaseKeyLua),
  rateLimit: script(rateLimitLua),
};

interface Pending {
  status: StatusMessage;
  ttlMs: number;
}

/**
 * The shared store for deployments with several ingress replicas: statuses, subscriptions, idempotency claims and
 * rate-limit buckets in Redis (or Valkey; a single server or a Redis Cluster), with plain commands and Lua
 * scripts only. Every write is one script on one key, so decisions (which status supersedes, who claims a key,
 * whether a bucket has room) are atomic across replicas. Kafka's status topic stays the source of truth: the
 * status feed fills the store, and can rebuild it.
 *
 * While the server is unreachable {@link ready} is false and every operation fails at once with
 * {@link StateUnavailableError}; the client reconnects with backoff by itself.
 */
export class RedisStateStore implements StateStore {
  readonly kind = 'redis' as const;
  readonly keys: RedisKeys;
  readonly #client: Redis | Cluster;
  readonly #subscriber: Redis | Cluster;
  readonly #subscriptions: StatusSubscriptions;
  readonly #retentionMs: number;
  readonly #now: () => number;
  readonly #injectedClock: boolean;
  #closed = false;

  constructor(options: RedisStateStoreOptions) {
    if ((options.url === undefined) === (options.nodes === undefined)) {
      throw new Error('the Redis state store needs exactly one of url (one server) and nodes (a cluster)');
    }
    this.keys = new RedisKeys(options.keyPrefix ?? defaults.keyPrefix);
    this.#retentionMs = options.retentionMs ?? defaults.retentionMs;
    this.#now = options.now ?? Date.now;
    this.#injectedClock = options.now !== undefined;
    const onError = options.onError ?? (() => {});
    this.#client = connect(options);
    // One more connection for subscriptions: a subscribed connection takes no other commands.
    this.#subscriber = this.#client instanceof Cluster ? this.#client.duplicate() : this.#client.duplicate();
    for (const connection of [this.#client, this.#subscriber]) connection.on('error', onError);
    this.#subscriptions = new StatusSubscriptions(
      this.#subscriber,
      this.keys,
      (id) => this.#locate(id),
      (batchId) => this.getBatch(batchId),
      onError,
    );
  }

  /** True while both connections (commands and subscriptions) are up. */
  ready(): boolean {
    return !this.#closed && this.#client.status === 'ready' && this.#subscriber.status === 'ready';
  }

  /** Resolves once {@link ready}; rejects with StateUnavailableError when the signal aborts first. */
  async waitUntilReady(signal?: AbortSignal): Promise<void> {
    while (!this.ready()) {
      if (this.#closed) throw new StateUnavailableError('the Redis state store is closed');
      if (signal?.aborted) {
        throw new StateUnavailableError('Redis did not become ready in time', { cause: signal.reason });
      }
      await new Promise<void>((resolve) => {
        const wake = () => {
          for (const connection of [this.#client, this.#subscriber]) connection.off('ready', wake);
          signal?.removeEventListener('abort', wake);
          resolve();
        };
        for (const connection of [this.#client, this.#subscriber]) connection.once('ready', wake);
        signal?.addEventListener('abort', wake, { once: true });
      });
    }
  }

  /**
   * Marks the store as filled from the status topic (a key without expiry), and says whether it already was.
   * `created` after the first time means Redis lost its data (restarted without persistence, or failed over to
   * an empty replica): whoever got `created` fills it again from the topic.
   */
  async markFilled(): Promise<'present' | 'created'> {
    const answer = await this.#call('mark the store filled', () =>
      this.#client.set(this.keys.filled(), new Date(this.#now()).toISOString(), 'NX'),
    );
    return answer === 'OK' ? 'created' : 'present';
  }

  async getStatus(id: string): Promise<StatusMessage | undefined> {
    return await this.#locate(id);
  }

  async getBatch(batchId: string): Promise<StatusMessage[] | undefined> {
    const values = await this.#call('read a batch', () => this.#client.hvals(this.keys.batch(batchId)));
    const statuses = values.map(decodeStatus).filter((status) => !this.#expired(status));
    return statuses.length === 0 ? undefined : statuses;
  }

  /**
   * Per status: point its id at its batch (a status of an earlier redrive generation stops here), then apply it
   * to its batch's hash with one script per batch, where the supersede rule decides. A redriven request's
   * statuses also replace its entry in the batches it was in before, so that those show its latest status as the
   * embedded store's do. Statuses already past retention are not written.
   */
  async applyStatuses(statuses: StatusMessage[]): Promise<void> {
    await this.#subscriptions.settled();
    const now = this.#now();
    const live = statuses.flatMap((status) => {
      const ttlMs = status.timings.acceptedAt + this.#retentionMs - now;
      return ttlMs > 0 ? [{ status, ttlMs: Math.ceil(ttlMs) }] : [];
    });
    if (live.length === 0) return;
    await this.#call('apply statuses', async () => {
      const verdicts = await Promise.all(
        live.map(({ status, ttlMs }) =>
          this.#script(scripts.pointRequest, this.keys.request(status.id), [
            String(status.generation ?? 0),
            status.batchId,
            String(ttlMs),
          ]),
        ),
      );
      const own = new Map<string, Pending[]>();
      const earlier = new Map<string, Pending[]>();
      live.forEach((pending, i) => {
        const [verdict, ...earlierBatches] = verdicts[i] as string[];
        if (verdict === 'stale') return;
        append(own, pending.status.batchId, pending);
        for (const batchId of earlierBatches) append(earlier, batchId, pending);
      });
      await Promise.all([
        ...[...own].map(([batchId, batch]) => this.#applyToBatch(batchId, 'all', batch)),
        ...[...earlier].map(([batchId, batch]) => this.#applyToBatch(batchId, 'known', batch)),
        ...this.#learnIdempotencyKeys(live, now),
      ]);
    });
  }

  async #applyToBatch(batchId: string, mode: 'all' | 'known', statuses: Pending[]): Promise<void> {
    for (let start = 0; start < statuses.length; start += statusesPerScript) {
      const args = [this.keys.channel(batchId), mode];
      for (const { status, ttlMs } of statuses.slice(start, start + statusesPerScript)) {
        args.push(status.id, encodeStatus(status), String(ttlMs));
      }
      await this.#script(scripts.applyStatuses, this.keys.batch(batchId), args);
    }
  }

  /** A status carrying an idempotency key claims it for its batch (a single request's id is its batch id). */
  #learnIdempotencyKeys(live: Pending[], now: number): Array<Promise<unknown>> {
    const claims = new Map<string, Promise<unknown>>();
    for (const { status, ttlMs } of live) {
      if (status.idempotency === undefined) continue;
      const key = this.keys.idempotency({ tenant: status.tenant, key: status.idempotency.key });
      if (claims.has(key)) continue;
      const entry = {
        id: status.batchId,
        fingerprint: status.idempotency.fingerprint,
        expiresAt: status.timings.acceptedAt + this.#retentionMs,
      };
      claims.set(
        key,
        this.#script(scripts.claimKey, key, [JSON.stringify(entry), String(ttlMs), String(now)]),
      );
    }
    return [...claims.values()];
  }

  subscribe(target: { id: string } | { batchId: string }, listener: StatusListener): () => void {
    return this.#subscriptions.subscribe(target, listener);
  }

  async claimIdempotencyKey(
    scope: IdempotencyScope,
    fingerprint: string,
    candidateId: string,
    ttlMs: number,
  ): Promise<IdempotencyClaim> {
    const now = this.#now();
    const ttl = Math.max(1, Math.ceil(ttlMs));
    const entry = JSON.stringify({ id: candidateId, fingerprint, expiresAt: now + ttlMs });
    const held = await this.#call('claim an idempotency key', () =>
      this.#script(scripts.claimKey, this.keys.idempotency(scope), [entry, String(ttl), String(now)]),
    );
    if (held === null) return { outcome: 'claimed' };
    const existing = JSON.parse(String(held)) as { id: string; fingerprint: string };
    return existing.fingerprint === fingerprint
      ? { outcome: 'existing', id: existing.id }
      : { outcome: 'conflict', id: existing.id };
  }

  async releaseIdempotencyKey(scope: IdempotencyScope, candidateId: string): Promise<void> {
    await this.#call('release an idempotency key', () =>
      this.#script(scripts.releaseKey, this.keys.idempotency(scope), [candidateId]),
    );
  }

  async consumeRateLimit(key: string, rule: RateLimitRule, cost: number): Promise<RateLimitDecision> {
    const nowMicros = this.#injectedClock ? String(Math.round(this.#now() * 1000)) : '';
    const grace = this.#injectedClock ? injectedClockGraceMs : 0;
    const reply = await this.#call('consume a rate limit', () =>
      this.#script(scripts.rateLimit, this.keys.rateLimit(key), [
        String(rule.ratePerSecond),
        String(rule.burst),
        String(cost),
        nowMicros,
        String(grace),
      ]),
    );
    const [allowed, remaining, resetMs, retryAfterMs] = reply as [string, string, string, string];
    return {
      allowed: allowed === '1',
      limit: rule.burst,
      remaining: Number(remaining),
      resetMs: Number(resetMs),
      retryAfterMs: retryAfterMs === 'inf' ? Number.POSITIVE_INFINITY : Number(retryAfterMs),
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#subscriptions.close();
    await Promise.all(
      [this.#client, this.#subscriber].map(async (connection) => {
        // QUIT waits for replies still due; an unreachable server gets a plain disconnect.
        await connection.quit().catch(() => {});
        connection.disconnect();
      }),
    );
  }

  /** The request's status (undefined: unknown or past retention), through the pointer to its batch. */
  async #locate(id: string): Promise<StatusMessage | undefined> {
    return await this.#call('read a status', async () => {
      const pointer = await this.#client.get(this.keys.request(id));
      if (pointer === null) return undefined;
      const batchId = pointer.split('\n')[1] ?? '';
      const value = await this.#client.hget(this.keys.batch(batchId), id);
      if (value === null) return undefined;
      const status = decodeStatus(value);
      return this.#expired(status) ? undefined : status;
    });
  }

  #expired(status: StatusMessage): boolean {
    return status.timings.acceptedAt + this.#retentionMs <= this.#now();
  }

  /** EVALSHA, loading the script with EVAL when the server does not know it yet (new or restarted). */
  async #script(lua: LuaScript, key: string, args: string[]): Promise<unknown> {
    try {
      return await this.#client.evalsha(lua.sha, 1, key, ...args);
    } catch (error) {
      if (replyCode(error) !== 'NOSCRIPT') throw error;
      return await this.#client.eval(lua.lua, 1, key, ...args);
    }
  }

  /** Runs commands, failing fast while the server is unreachable and turning connection failures into one type. */
  async #call<T>(what: string, work: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new StateUnavailableError(`cannot ${what}: the Redis state store is closed`);
    if (this.#client.status !== 'ready') {
      throw new StateUnavailableError(`cannot ${what}: Redis is unreachable (${this.#client.status})`);
    }
    try {
      return await work();
    } catch (error) {
      if (isUnavailability(error)) {
        throw new StateUnavailableError(`cannot ${what}: Redis is unreachable`, { cause: error });
      }
      throw error;
    }
  }
}

/**
 * Builds a Redis store and waits until it is connected, failing with StateUnavailableError after
 * `connectTimeoutMs` (default 10 s) or when the signal aborts.
 */
export async function createRedisStateStore(
  options: RedisStateStoreOptions & { connectTimeoutMs?: number; signal?: AbortSignal },
): Promise<RedisStateStore> {
  const { connectTimeoutMs = 10_000, signal, ...storeOptions } = options;
  const store = new RedisStateStore(storeOptions);
  const deadline = AbortSignal.timeout(connectTimeoutMs);
  try {
    await store.waitUntilReady(signal === undefined ? deadline : AbortSignal.any([deadline, signal]));
  } catch (error) {
    await store.close();
    throw error;
  }
  return store;
}

function connect(options: RedisStateStoreOptions): Redis | Cluster {
  const commandTimeout = options.commandTimeoutMs ?? defaults.commandTimeoutMs;
  const maxDelay = options.maxReconnectDelayMs ?? defaults.maxReconnectDelayMs;
  // Jittered exponential backoff, so that replicas that lost the server together do not return together.
  const backoff = (attempt: number) =>
    Math.round(Math.min(maxDelay, 50 * 2 ** Math.min(attempt, 10)) * (0.5 + Math.random() / 2));
  const connection: RedisOptions = {
    commandTimeout,
    connectTimeout: Math.max(commandTimeout, 1_000),
    // Fail fast instead of queueing while disconnected: the caller answers 503 and the client retries later.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    autoResubscribe: false,
    retryStrategy: backoff,
  };
  if (options.url !== undefined) return new Redis(options.url, connection);
  return new Cluster(options.nodes ?? [], {
    enableOfflineQueue: false,
    clusterRetryStrategy: backoff,
    redisOptions: {
      ...connection,
      ...(options.username === undefined ? {} : { username: options.username }),
      ...(options.password === undefined ? {} : { password: options.password }),
      ...(options.tls ? { tls: {} } : {}),
    },
  });
}

function append<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}
