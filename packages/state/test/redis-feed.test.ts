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

/**
 * A group settles in a second or two after a member joins. With @platformatic/kafka's cooperative protocol this
 * group instead rebalanced every heartbeat (3 s) for about 50 s after the second member joined, without committing
 * what it applied; the feed rebalances eagerly for that reason. The bound is twenty times a healthy settling time
 * and well under the storm's, so that a storm fails this test rather than merely slowing it.
 */
const settlesWithinMs = 20_000;

describe.each(['platformatic', 'kafkajs'] as const)(
  'the status feed into Redis through a shared group (%s)',
  (adapter) => {
    it('applies each status once across replicas, and a replica that joins later does not read everything again', async () => {
      const kafka = createKafkaClient(adapter, { brokers, clientId: uniqueName('shared-feed') });
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
        const settled = AbortSignal.timeout(settlesWithinMs);
        await Promise.all(feeds.map((f) => f.caughtUp(settled)));
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
  },
);
