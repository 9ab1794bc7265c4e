import { codecs, type StatusMessage } from '@sluice/contracts';
import { createKafkaClient } from '@sluice/kafka';
import { uniqueName, waitFor } from '@sluice/testkit';
import { describe, expect, inject, it } from 'vitest';
import { type StateStore, StatusFeed } from '../src/index.ts';
import { redisServerPerFile, redisStores } from './redis-fixtures.ts';
import { status } from './store-contract.ts';

const brokers = inject('kafkaBrokers').split(',');
const redis = redisServerPerFile();
const stores = redisStores(() => ({ url: redis.server().url }));

/** The same store seen through one replica: records which statuses this replica applied. */
function replica(store: StateStore): { store: StateStore; applied: Set<string> } {
  const applied = new Set<string>();
  const applyStatuses = async (statuses: StatusMessage[]) => {
    for (const s of statuses) applied.add(`${s.id}:${s.status}`);
    await store.applyStatuses(statuses);
  };
  const counting = new Proxy(store, {
    get(target, property) {
      if (property === 'applyStatuses') return applyStatuses;
      const value: unknown = Reflect.get(target, property);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { store: counting, applied };
}

describe('the status feed into Redis through a shared group', () => {
  it('applies each status once across replicas, and a replica that joins later does not read everything again', async () => {
    // kafkajs: on the platformatic adapter a partition moved by a cooperative rebalance is still fetched by its
    // earlier owner (which may apply but not commit it), and its new owner stalls for about 50 s before it
    // commits; that is the adapter's (reported), not the feed's, so this test does not wait for it.
    const kafka = createKafkaClient('kafkajs', { brokers, clientId: uniqueName('shared-feed') });
    const admin = kafka.admin();
    const producer = kafka.producer();
    const topic = uniqueName('status');
    const groupId = uniqueName('shared-status');
    await admin.createTopics([
      { name: topic, partitions: 2, replicationFactor: 1, config: { 'cleanup.policy': 'compact' } },
    ]);
    const send = (statuses: StatusMessage[]) =>
      producer.send(statuses.map((s) => ({ topic, key: s.id, ...codecs.status.encode(s) })));
    const now = Date.now();
    const fresh = () => status({ timings: { acceptedAt: now }, updatedAt: now });
    const earlier = Array.from({ length: 20 }, fresh);
    await send([
      ...earlier,
      ...earlier.map((s) => ({ ...s, status: 'succeeded' as const, updatedAt: now + 1 })),
    ]);

    const store = await stores.create({ retentionMs: 600_000 });
    const first = replica(store);
    const second = replica(store);
    const feed = (view: StateStore) =>
      new StatusFeed({ client: kafka, topic, groupId, store: view, mode: 'shared' });
    const feeds = [feed(first.store)];
    try {
      await feeds[0]?.start();
      for (const s of earlier) expect((await store.getStatus(s.id))?.status).toBe('succeeded');
      expect(first.applied.size).toBe(40);

      feeds.push(feed(second.store));
      await feeds[1]?.start();
      // The group had committed what the first replica applied: the second starts where the group is.
      expect(second.applied.size).toBe(0);

      const later = Array.from({ length: 20 }, fresh);
      await send(later);
      await Promise.all(feeds.map((f) => f.caughtUp()));
      for (const s of later) expect((await store.getStatus(s.id))?.status).toBe('queued');
      const laterKeys = later.map((s) => `${s.id}:queued`);
      const appliedBy = (applied: Set<string>) => laterKeys.filter((key) => applied.has(key)).length;
      // Every later status reached the store through one of the two replicas.
      expect(laterKeys.every((key) => first.applied.has(key) || second.applied.has(key))).toBe(true);
      expect(appliedBy(first.applied) + appliedBy(second.applied)).toBeGreaterThanOrEqual(20);
      await waitFor('both replicas to stay joined', () => feeds.every((f) => f.isJoined()));
      expect(await feeds[0]?.lag()).toBe(0n);
    } finally {
      await Promise.all(feeds.map((f) => f.close()));
      await producer.close();
      await admin.deleteTopics([topic]);
      await admin.close();
    }
  });
});
