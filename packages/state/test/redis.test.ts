import type { StatusMessage } from '@sluice/contracts';
import { startRedis, waitFor } from '@sluice/testkit';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import {
  createRedisStateStore,
  EmbeddedStateStore,
  RedisStateStore,
  type StateStore,
  StateUnavailableError,
} from '../src/index.ts';
import { redisServerPerFile, redisStores } from './redis-fixtures.ts';
import { stateStoreContract, status } from './store-contract.ts';

const redis = redisServerPerFile();
const stores = redisStores(() => ({ url: redis.server().url }));

stateStoreContract('redis', stores.factory);

/** Rejects with StateUnavailableError, and how long that took. */
async function unavailable(operation: Promise<unknown>): Promise<number> {
  const started = performance.now();
  await expect(operation).rejects.toBeInstanceOf(StateUnavailableError);
  return performance.now() - started;
}

describe('the Redis store', () => {
  it('sets real TTLs on everything it writes, under its own key prefix only', async () => {
    const store = await stores.create({ retentionMs: 60_000 });
    const now = Date.now();
    const single = status({ timings: { acceptedAt: now }, updatedAt: now });
    const carried = { ...single, batchId: single.id, idempotency: { key: 'k', fingerprint: 'fp' } };
    await store.applyStatuses([carried]);
    await store.claimIdempotencyKey({ tenant: 'acme', key: 'other' }, 'fp', 'id-1', 30_000);
    await store.consumeRateLimit('tenant-acme', { ratePerSecond: 1, burst: 10 }, 3);
    const { keys } = store;
    const written = [
      keys.batch(carried.batchId),
      keys.request(carried.id),
      keys.idempotency({ tenant: 'acme', key: 'k' }),
      keys.idempotency({ tenant: 'acme', key: 'other' }),
      keys.rateLimit('tenant-acme'),
    ];
    const ttls = await Promise.all(written.map((key) => redis.client().pttl(key)));
    for (const ttl of ttls.slice(0, 3)) expect(ttl).toBeGreaterThan(50_000);
    for (const ttl of ttls) expect(ttl).toBeGreaterThan(0);
    expect(ttls[3]).toBeLessThanOrEqual(30_000);
    // Three requests owed at one per second: the bucket is full again in three seconds.
    expect(ttls[4]).toBeLessThanOrEqual(3_000);
    const all = await redis.client().keys(`${keys.prefix}*`);
    expect(all.sort()).toEqual([...written].sort());
  });

  it('keeps what the embedded store keeps for a redriven request, its earlier batch and its listeners', async () => {
    const shared = await stores.create({ retentionMs: 60_000, now: () => 1_000 });
    const embedded = new EmbeddedStateStore({ retentionMs: 60_000, maxStatuses: 100, now: () => 1_000 });
    const batchId = `batch-${Math.random()}`;
    const dead = status({ batchId, single: false, status: 'dead', attempts: 3, updatedAt: 5_000 });
    const sibling = status({ batchId, single: false, status: 'succeeded', attempts: 1, updatedAt: 5_000 });
    const redriven = {
      ...dead,
      batchId: `${batchId}.r1`,
      single: true,
      status: 'queued' as const,
      generation: 1,
    };
    const views = async (store: StateStore) => {
      const heard: string[] = [];
      await store.applyStatuses([dead, sibling]);
      const unsubscribe = store.subscribe({ id: dead.id }, (s) =>
        heard.push(`${s.status}:${s.generation ?? 0}`),
      );
      await store.applyStatuses([{ ...redriven, updatedAt: 6_000 }]);
      await store.applyStatuses([{ ...redriven, status: 'processing', updatedAt: 7_000 }]);
      await store.applyStatuses([{ ...dead, updatedAt: 8_000 }]);
      await waitFor('two changes', () => heard.length >= 2);
      unsubscribe();
      const byId = (statuses: StatusMessage[] | undefined) =>
        Object.fromEntries((statuses ?? []).map((s) => [s.id, `${s.status}:${s.batchId}`]));
      return {
        heard,
        status: await store.getStatus(dead.id),
        earlier: byId(await store.getBatch(batchId)),
        later: byId(await store.getBatch(redriven.batchId)),
      };
    };
    const expected = await views(embedded);
    expect(expected.heard).toEqual(['queued:1', 'processing:1']);
    expect(await views(shared)).toEqual(expected);
  });

  it('gives the embedded store’s rate-limit decisions, number for number, over a sequence of takes', async () => {
    const clock = { now: 5_000_000 };
    const shared = await stores.create({ now: () => clock.now });
    const embedded = new EmbeddedStateStore({ retentionMs: 60_000, maxStatuses: 100, now: () => clock.now });
    const rules = [
      { ratePerSecond: 3, burst: 4 },
      { ratePerSecond: 0.7, burst: 2 },
      { ratePerSecond: 250, burst: 50 },
    ];
    let seed = 7;
    const random = () => {
      seed = (seed * 48_271) % 2_147_483_647;
      return seed / 2_147_483_647;
    };
    for (let i = 0; i < 300; i += 1) {
      const rule = rules[i % rules.length] ?? { ratePerSecond: 1, burst: 1 };
      const cost = Math.floor(random() * (rule.burst + 2));
      const key = `k-${i % rules.length}`;
      const [fromRedis, fromEmbedded] = await Promise.all([
        shared.consumeRateLimit(key, rule, cost),
        embedded.consumeRateLimit(key, rule, cost),
      ]);
      expect(fromRedis, `take ${i} of ${cost} at ${clock.now}`).toEqual(fromEmbedded);
      // Each key's first take is at the embedded store's origin: Redis measures a bucket from its first take,
      // and the same instants then give the same doubles on both sides. Whole milliseconds, as Date.now gives.
      if (i >= rules.length - 1) clock.now += Math.round(random() * 700);
    }
  });

  it('is not ready and fails fast while Redis is down, then recovers by itself, subscriptions included', async () => {
    const own = await startRedis();
    try {
      // A command timeout far above what "at once" means: an operation that waited for it would show.
      const store = await stores.create({ url: own.url, maxReconnectDelayMs: 200, commandTimeoutMs: 60_000 });
      expect(await store.markFilled()).toBe('created');
      expect(await store.markFilled()).toBe('present');
      const batchId = `batch-${Math.random()}`;
      const heard: string[] = [];
      store.subscribe({ batchId }, (s) => heard.push(s.status));
      const first = status({ batchId, single: false, timings: { acceptedAt: Date.now() } });
      await store.applyStatuses([first]);
      await waitFor('the first change', () => heard.length === 1);

      await own.kill('SIGKILL');
      await waitFor('the store to notice', () => !store.ready());
      for (const operation of [
        store.getStatus(first.id),
        store.getBatch(batchId),
        store.applyStatuses([first]),
        store.claimIdempotencyKey({ tenant: 'acme', key: 'k' }, 'fp', 'id', 1_000),
        store.releaseIdempotencyKey({ tenant: 'acme', key: 'k' }, 'id'),
        store.consumeRateLimit('k', { ratePerSecond: 1, burst: 1 }, 1),
      ]) {
        // Far below the 60 s command timeout: nothing waits for a server that is not there.
        expect(await unavailable(operation)).toBeLessThan(30_000);
      }
      const error = await store.getStatus(first.id).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'STATE_UNAVAILABLE', retryable: true });

      await own.restart();
      await store.waitUntilReady(AbortSignal.timeout(30_000));
      // The restarted server is empty (no persistence): the status feed would refill it from Kafka, and the
      // missing fill marker is how a replica learns that it must.
      expect(await store.getStatus(first.id)).toBeUndefined();
      expect(await store.markFilled()).toBe('created');
      expect(await store.markFilled()).toBe('present');
      await store.applyStatuses([first, { ...first, status: 'processing', updatedAt: first.updatedAt + 1 }]);
      expect((await store.getStatus(first.id))?.status).toBe('processing');
      await waitFor('changes after the restart', () => heard.length === 2);
      // The first status, written again to the emptied server, is not told twice.
      expect(heard).toEqual(['queued', 'processing']);
    } finally {
      await own.stop();
    }
  });

  it('tells listeners, once, the changes another replica made while their subscription connection was away', async () => {
    const own = await startRedis();
    const admin = new Redis(own.url);
    try {
      const listening = await stores.create({ url: own.url, maxReconnectDelayMs: 100 });
      const writing = await stores.create({ url: own.url, keyPrefix: listening.keys.prefix });
      const batchId = `batch-${Math.random()}`;
      const fresh = () =>
        status({ batchId, single: false, timings: { acceptedAt: Date.now() }, updatedAt: Date.now() });
      const [a, b] = [fresh(), fresh()];
      await writing.applyStatuses([a, b]);
      const byBatch: StatusMessage[] = [];
      const byId: StatusMessage[] = [];
      listening.subscribe({ batchId }, (s) => byBatch.push(s));
      listening.subscribe({ id: a.id }, (s) => byId.push(s));
      const processing = { ...a, status: 'processing' as const, updatedAt: a.updatedAt + 1 };
      // Through the listening store, which applies only once its subscriptions are active.
      await listening.applyStatuses([processing]);
      await waitFor('the change before the outage', () => byBatch.length === 1 && byId.length === 1);

      // No new connection is let in, then the subscription connection is dropped: it cannot come back.
      const connected = Number(/connected_clients:(\d+)/.exec(await admin.info('clients'))?.[1]);
      await admin.config('SET', 'maxclients', String(connected - 1));
      await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
      await waitFor('the listening store to notice', () => !listening.ready());
      const done = { ...processing, status: 'succeeded' as const, updatedAt: a.updatedAt + 2 };
      const other = { ...b, status: 'dead' as const, updatedAt: b.updatedAt + 2 };
      await writing.applyStatuses([done, other]);
      expect(byBatch.map((s) => s.status)).toEqual(['processing']);

      await admin.config('SET', 'maxclients', '10000');
      await listening.waitUntilReady(AbortSignal.timeout(30_000));
      await waitFor('the missed changes', () => byBatch.length === 3 && byId.length === 2);
      expect(byBatch.map((s) => `${s.id === a.id ? 'a' : 'b'}:${s.status}`).sort()).toEqual([
        'a:processing',
        'a:succeeded',
        'b:dead',
      ]);
      expect(byId.map((s) => s.status)).toEqual(['processing', 'succeeded']);
      // Heard once: a later status of another request reaches the batch listener, nothing is told again.
      await writing.applyStatuses([{ ...other, status: 'dead', updatedAt: other.updatedAt }]);
      const later = fresh();
      await writing.applyStatuses([later]);
      await waitFor('a later change', () => byBatch.length === 4);
      expect(byBatch[3]?.id).toBe(later.id);
    } finally {
      admin.disconnect();
      await own.stop();
    }
  });

  it('times out commands to a server that stops answering, and answers again once it does', async () => {
    const own = await startRedis();
    try {
      const store = await stores.create({ url: own.url, commandTimeoutMs: 300 });
      await own.kill('SIGSTOP');
      try {
        const took = await unavailable(store.getStatus('anything'));
        expect(took).toBeGreaterThanOrEqual(250);
        expect(took).toBeLessThan(5_000);
      } finally {
        await own.kill('SIGCONT');
      }
      await waitFor('answers again', () => store.getBatch('none').then(() => true), { timeoutMs: 30_000 });
    } finally {
      await own.stop();
    }
  });

  it('reports a server nobody listens on: never ready, operations rejected at once, the factory gives up', async () => {
    const gone = await startRedis();
    await gone.stop();
    const store = new RedisStateStore({ url: gone.url, maxReconnectDelayMs: 100, commandTimeoutMs: 60_000 });
    try {
      expect(store.ready()).toBe(false);
      // At once: far below the 60 s command timeout, which a machine's speed cannot explain away.
      expect(await unavailable(store.getStatus('x'))).toBeLessThan(30_000);
    } finally {
      await store.close();
    }
    await expect(
      createRedisStateStore({ url: gone.url, connectTimeoutMs: 500, onError: () => {} }),
    ).rejects.toBeInstanceOf(StateUnavailableError);
  });

  it('refuses a key prefix that would become a cluster hash tag, and a missing or doubled address', () => {
    expect(() => new RedisStateStore({ url: redis.server().url, keyPrefix: '{sluice}:' })).toThrow(/braces/);
    expect(() => new RedisStateStore({})).toThrow(/exactly one of url/);
    expect(() => new RedisStateStore({ url: redis.server().url, nodes: [] })).toThrow(/exactly one of url/);
  });
});
