import { codecs, type StatusMessage } from '@sluice/contracts';
import { createKafkaClient } from '@sluice/kafka';
import { uniqueName, waitFor } from '@sluice/testkit';
import { describe, expect, inject, it } from 'vitest';
import { EmbeddedStateStore, StatusFeed } from '../src/index.ts';
import { status } from './store-contract.ts';

const brokers = inject('kafkaBrokers').split(',');

describe('the status feed', () => {
  it('rebuilds a store from the status topic and follows later writes of any producer', async () => {
    const kafka = createKafkaClient('platformatic', { brokers, clientId: uniqueName('feed') });
    const admin = kafka.admin();
    const producer = kafka.producer();
    const topic = uniqueName('status');
    await admin.createTopics([
      { name: topic, partitions: 2, replicationFactor: 1, config: { 'cleanup.policy': 'compact' } },
    ]);
    const send = (statuses: StatusMessage[]) =>
      producer.send(statuses.map((s) => ({ topic, key: s.id, ...codecs.status.encode(s) })));
    const now = Date.now();
    const first = status({ timings: { acceptedAt: now }, updatedAt: now });
    const second = status({ timings: { acceptedAt: now }, updatedAt: now });
    await send([first, second, { ...first, status: 'succeeded', attempts: 1, updatedAt: now + 1 }]);
    await producer.send([
      { topic, key: 'garbage', value: 'not json', headers: { 'sluice-schema-version': '1' } },
    ]);
    const invalid: string[] = [];
    const store = new EmbeddedStateStore({ retentionMs: 60_000, maxStatuses: 1_000 });
    const feed = new StatusFeed({
      client: kafka,
      topic,
      groupId: uniqueName('feed-group'),
      store,
      onInvalid: (detail) => invalid.push(detail),
    });
    try {
      await feed.start();
      expect((await store.getStatus(first.id))?.status).toBe('succeeded');
      expect((await store.getStatus(second.id))?.status).toBe('queued');
      expect(invalid).toHaveLength(1);
      // A late "queued" for a finished request (a second writer, a replay) does not take the status back.
      await send([
        { ...first, status: 'queued', updatedAt: now + 2 },
        { ...second, status: 'dead', updatedAt: now + 2 },
      ]);
      await feed.caughtUp();
      expect((await store.getStatus(first.id))?.status).toBe('succeeded');
      expect((await store.getStatus(second.id))?.status).toBe('dead');
      await waitFor('the feed to stay joined', () => feed.isJoined());
    } finally {
      await feed.close();
      await producer.close();
      await admin.deleteTopics([topic]);
      await admin.close();
    }
  });
});
