import { trace } from '@opentelemetry/api';
import { type ProgressMessage, progressRecord } from '@sluice/contracts';
import type { ConsumedRecord, ProducerRecord } from '@sluice/kafka';
import { describe, expect, it } from 'vitest';
import { Aggregator } from '../src/aggregator.ts';
import { aggregatorFixture } from './fixtures.ts';

const settings = { closedRetentionMs: 60_000, orphanTimeoutMs: 3_600_000 };
const t0 = 1_000_000_000_000;

describe('the clock sweep', () => {
  it('acts on each batch when its time comes, not before, and tries a failed write again at the next sweep', async () => {
    const { topics, producer: real, store, outputTopics, close } = await aggregatorFixture(settings);
    // The first tombstone write fails, as when the broker leading the changelog partition goes away.
    let tombstonesRefused = 1;
    const producer = {
      connect: () => real.connect(),
      close: () => real.close(),
      send: async (records: ProducerRecord[]) => {
        if (tombstonesRefused > 0 && records.some((r) => r.topic === topics.state && r.value === null)) {
          tombstonesRefused -= 1;
          throw new Error('NOT_LEADER_OR_FOLLOWER');
        }
        return real.send(records);
      },
    };
    let now = t0;
    const aggregator = new Aggregator({
      producer,
      store,
      topics: outputTopics,
      settings,
      tracer: trace.getTracer('test'),
      now: () => now,
    });
    aggregator.assigned([0]);
    const signal = new AbortController().signal;
    let offset = 0n;
    const handle = (message: ProgressMessage) => {
      const produced = progressRecord('results', message);
      const record: ConsumedRecord = {
        topic: 'results',
        partition: 0,
        offset: offset++,
        key: Buffer.from(produced.key),
        value: produced.value,
        headers: produced.headers,
        timestamp: now,
      };
      return aggregator.handle(record, signal);
    };
    const base = { tenant: 'acme', route: 'orders', acceptedAt: t0 };
    try {
      // One batch that will expire at its deadline, and fifty that finish at once and close.
      await handle({
        kind: 'accepted',
        ...base,
        batchId: 'late',
        single: true,
        ids: ['late-1'],
        deadlineAt: t0 + 5_000,
      });
      const closed = Array.from({ length: 50 }, (_, i) => `done-${i}`);
      for (const batchId of closed) {
        await handle({
          kind: 'accepted',
          ...base,
          batchId,
          single: true,
          ids: [`${batchId}-1`],
          deadlineAt: t0 + 3_600_000,
        });
        await handle({
          kind: 'finished',
          ...base,
          batchId,
          id: `${batchId}-1`,
          status: 'succeeded',
          attempts: [{ number: 1, startedAt: t0, durationMs: 5, status: 200 }],
          result: { status: 200, headers: {}, body: 'ok' },
          startedAt: t0,
          finishedAt: t0,
        });
      }
      expect(store.get('done-0')?.phase).toBe('closed');

      now = t0 + 4_999;
      expect(await aggregator.sweep()).toBe(0);
      now = t0 + 5_000;
      expect(await aggregator.sweep()).toBe(1);
      expect(store.get('late')?.phase).toBe('closed');

      // The closed ones are forgotten once their retention has passed; the first tombstone fails, so the sweep
      // fails, and the next one forgets every one of them still.
      now = t0 + settings.closedRetentionMs;
      await expect(aggregator.sweep()).rejects.toThrow('NOT_LEADER_OR_FOLLOWER');
      expect(await aggregator.sweep()).toBe(50);
      for (const batchId of closed) expect(store.get(batchId)).toBeUndefined();
      expect(await aggregator.sweep()).toBe(0);
      // The expired one closed 5 s later than the others, so it goes 5 s later.
      expect(store.get('late')?.phase).toBe('closed');
      now = t0 + 5_000 + settings.closedRetentionMs;
      expect(await aggregator.sweep()).toBe(1);
      expect(store.get('late')).toBeUndefined();
    } finally {
      await close();
    }
  });
});
