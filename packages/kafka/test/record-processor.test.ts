import { uniqueName, waitFor } from '@sluice/testkit';
import { describe, expect, inject, it } from 'vitest';
import { createKafkaClient, RecordProcessor } from '../src/index.ts';

const brokers = inject('kafkaBrokers').split(',');

describe('RecordProcessor', () => {
  it('handles a record again after its handler failed, and commits it only once it succeeded', async () => {
    const kafka = createKafkaClient('platformatic', { brokers, clientId: uniqueName('processor') });
    const admin = kafka.admin();
    const topic = uniqueName('processor');
    await admin.createTopics([{ name: topic, partitions: 1, replicationFactor: 1, config: {} }]);
    const producer = kafka.producer();
    await producer.send(['a', 'flaky', 'c'].map((value) => ({ topic, key: value, value })));
    const groupId = uniqueName('processor-group');
    const tries = new Map<string, number>();
    const errors: number[] = [];
    const processor = new RecordProcessor({
      consumer: kafka.consumer({ groupId, topics: [topic], fromBeginning: true }),
      maxInFlight: 8,
      commitIntervalMs: 50,
      maxRetryDelayMs: 100,
      handle: async (record) => {
        const value = String(record.value);
        tries.set(value, (tries.get(value) ?? 0) + 1);
        if (value === 'flaky' && (tries.get(value) ?? 0) < 3) throw new Error('dependency down');
      },
      onError: (_error, _record, attempt) => errors.push(attempt),
    });
    try {
      await processor.start();
      await waitFor('all three records finished and committed', async () => {
        const [lag] = await admin.groupLag(groupId, [topic]);
        return lag?.committed === 3n;
      });
      expect(tries.get('flaky')).toBe(3);
      expect(tries.get('a')).toBe(1);
      expect(errors).toEqual([1, 2]);
    } finally {
      await processor.stop(1_000);
      await producer.close();
      await admin.deleteTopics([topic]);
      await admin.close();
    }
  });

  it('never commits past a record whose handler keeps failing', async () => {
    const kafka = createKafkaClient('platformatic', { brokers, clientId: uniqueName('processor') });
    const admin = kafka.admin();
    const topic = uniqueName('processor');
    await admin.createTopics([{ name: topic, partitions: 1, replicationFactor: 1, config: {} }]);
    const producer = kafka.producer();
    await producer.send(['a', 'broken', 'c', 'd'].map((value) => ({ topic, key: value, value })));
    const groupId = uniqueName('processor-group');
    const handled = new Set<string>();
    const processor = new RecordProcessor({
      consumer: kafka.consumer({ groupId, topics: [topic], fromBeginning: true }),
      maxInFlight: 8,
      commitIntervalMs: 50,
      maxRetryDelayMs: 50,
      handle: async (record) => {
        if (String(record.value) === 'broken') throw new Error('always');
        handled.add(String(record.value));
      },
    });
    try {
      await processor.start();
      await waitFor('the records around the broken one', () => handled.size === 3);
      await waitFor('a commit', async () => (await admin.groupLag(groupId, [topic]))[0]?.committed === 1n);
      const { abandoned } = await processor.stop(200);
      expect(abandoned).toBe(1);
      const [lag] = await admin.groupLag(groupId, [topic]);
      // Only "a" is below the broken record; "c" and "d" finished but are after it.
      expect(lag?.committed).toBe(1n);
    } finally {
      await producer.close();
      await admin.deleteTopics([topic]);
      await admin.close();
    }
  });
});
