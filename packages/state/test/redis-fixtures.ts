import { type RedisServer, startRedis, uniqueName } from '@sluice/testkit';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { RedisStateStore, type RedisStateStoreOptions } from '../src/index.ts';
import type { StoreFactory } from './store-contract.ts';

type Connection = Pick<RedisStateStoreOptions, 'url' | 'nodes'>;

/**
 * Redis stores for tests: each with a key prefix of its own on the shared server, connected before it is handed
 * out, and closed after each test even when the test failed before its own close.
 */
export function redisStores(connection: () => Connection) {
  const open = new Set<RedisStateStore>();
  afterEach(async () => {
    await Promise.all([...open].map((store) => store.close()));
    open.clear();
  });
  const create = async (options: Partial<RedisStateStoreOptions> = {}): Promise<RedisStateStore> => {
    const store = new RedisStateStore({
      ...connection(),
      keyPrefix: `${uniqueName('t')}:`,
      commandTimeoutMs: 10_000,
      ...options,
    });
    open.add(store);
    await store.waitUntilReady(AbortSignal.timeout(30_000));
    return store;
  };
  const factory: StoreFactory = {
    create: (clock, { retentionMs }) => create({ retentionMs, now: () => clock.now }),
  };
  return { create, factory };
}

/** One redis-server for a test file, started before its tests and stopped after them, and a plain client of it. */
export function redisServerPerFile(): { server: () => RedisServer; client: () => Redis } {
  let server: RedisServer | undefined;
  let client: Redis | undefined;
  beforeAll(async () => {
    server = await startRedis();
    client = new Redis(server.url);
  });
  afterAll(async () => {
    client?.disconnect();
    await server?.stop();
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the Redis server of this file has not started');
    return value;
  };
  return { server: () => started(server), client: () => started(client) };
}
