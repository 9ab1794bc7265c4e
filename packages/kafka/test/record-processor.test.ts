import { uniqueName, waitFor } from '@sluice/testkit';
import { describe, expect, inject, it } from 'vitest';
import {
  type ConsumedRecord,
  type Consumer,
  type ConsumerHandlers,
  createKafkaClient,
  RecordProcessor,
  type TopicPartition,
} from '../src/index.ts';

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

  it('starts no more records of a partition revoked while its batch waits for room', async () => {
    const driven = drivenConsumer();
    const started: string[] = [];
    const held: Array<() => void> = [];
    let holding = true;
    const processor = new RecordProcessor({
      consumer: driven.consumer,
      maxInFlight: 2,
      handle: async (record) => {
        started.push(String(record.value));
        if (holding) await new Promise<void>((resolve) => held.push(resolve));
      },
    });
    await processor.start();
    const batch = driven.handlers().onBatch({ ...lane, records: records(0, 10) });
    await waitFor('two records running', () => started.length === 2);
    // The group gives the partition to another member, which reads from the committed offset (0).
    driven.assigned = [];
    await driven.handlers().onRevoked?.([lane]);
    holding = false;
    for (const release of held) release();
    await batch;
    expect(started).toEqual(['0', '1']);
    await processor.stop(100);
  });

  it('does not handle again records the client delivers a second time from the committed offset', async () => {
    const driven = drivenConsumer();
    const started: string[] = [];
    const processor = new RecordProcessor({
      consumer: driven.consumer,
      maxInFlight: 100,
      commitIntervalMs: 60_000,
      handle: async (record) => {
        started.push(String(record.value));
      },
    });
    await processor.start();
    await driven.handlers().onBatch({ ...lane, records: records(0, 5) });
    // Nothing committed yet; a rebalance that adds partitions makes the client read this one again from 0.
    await driven.handlers().onBatch({ ...lane, records: records(0, 8) });
    await waitFor('every record handled', () => started.length >= 8);
    expect(started).toEqual(['0', '1', '2', '3', '4', '5', '6', '7']);
    await processor.stop(100);
  });
});

const lane: TopicPartition = { topic: 'lanes', partition: 0 };

function records(from: number, to: number): ConsumedRecord[] {
  return Array.from({ length: to - from }, (_, i) => ({
    ...lane,
    offset: BigInt(from + i),
    key: null,
    value: Buffer.from(String(from + i)),
    headers: {},
    timestamp: 0,
  }));
}

/**
 * A consumer driven by hand: the test hands over batches and rebalances as a client would, so that the decisions
 * under test are the processor's alone.
 */
function drivenConsumer(): { assigned: TopicPartition[]; handlers(): ConsumerHandlers; consumer: Consumer } {
  let given: ConsumerHandlers | undefined;
  const driven = {
    assigned: [lane],
    handlers: () => given as ConsumerHandlers,
    consumer: {
      start: async (handlers: ConsumerHandlers) => {
        given = handlers;
        await handlers.onAssigned?.(driven.assigned);
      },
      commit: async () => {},
      pause: () => {},
      resume: () => {},
      assignment: (): TopicPartition[] => driven.assigned,
      isJoined: () => true,
      close: async () => {},
    },
  };
  return driven;
}
