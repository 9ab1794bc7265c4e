import { type BatchState, type ProgressMessage, progressRecord } from '@sluice/contracts';
import type { ConsumedRecord, ProducerRecord } from '@sluice/kafka';
import { describe, expect, it } from 'vitest';
import { applyProgress } from '../src/batch-reducer.ts';
import { aggregatorFixture, aggregatorOn } from './fixtures.ts';

const settings = { closedRetentionMs: 60_000, orphanTimeoutMs: 3_600_000 };
const t0 = 1_000_000_000_000;

/** The result of a single request's one request (`<batchId>-1`), answered 200 at t0. */
const succeeded = (batchId: string): ProgressMessage => ({
  kind: 'finished',
  tenant: 'acme',
  route: 'orders',
  acceptedAt: t0,
  batchId,
  id: `${batchId}-1`,
  status: 'succeeded',
  attempts: [{ number: 1, startedAt: t0, durationMs: 5, status: 200 }],
  result: { status: 200, headers: {}, body: 'ok' },
  startedAt: t0,
  finishedAt: t0,
});

describe('the clock sweep', () => {
  it('acts on each batch when its time comes, not before, and tries a failed write again at the next sweep', async () => {
    const fixture = await aggregatorFixture(settings);
    const { topics, producer: real, store, close } = fixture;
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
    const aggregator = aggregatorOn(fixture, settings, { producer, now: () => now });
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
        await handle(succeeded(batchId));
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

  it('drops the due times of states a batch has left, instead of holding them until their time (a day for a deadline)', async () => {
    const fixture = await aggregatorFixture(settings);
    const { store, close } = fixture;
    let now = t0;
    const aggregator = aggregatorOn(fixture, settings, { now: () => now });
    aggregator.assigned([0]);
    const base = { tenant: 'acme', route: 'orders', acceptedAt: t0 };
    const deadlineAt = t0 + 24 * 3_600_000;
    /** The store as the aggregator leaves it once Kafka acknowledged the write of `state`. */
    const commit = (batchId: string, state: BatchState | null | undefined) => {
      const { next } = store.changelogRecord(batchId, 0, state as BatchState);
      store.commitLocal(batchId, 0, next);
      return next as BatchState;
    };
    try {
      // Each single request is due at its deadline while open, then at the end of its retention once closed.
      const count = 3_000;
      for (let i = 0; i < count; i += 1) {
        const batchId = `single-${i}`;
        const open = commit(
          batchId,
          applyProgress(
            undefined,
            { kind: 'accepted', ...base, batchId, single: true, ids: [`${batchId}-1`], deadlineAt },
            BigInt(2 * i),
            t0,
          ).state,
        );
        commit(batchId, applyProgress(open, succeeded(batchId), BigInt(2 * i + 1), t0).state);
      }
      expect(store.get('single-0')?.phase).toBe('closed');
      expect(store.size).toBe(count);
      expect(store.indexedSize).toBeLessThanOrEqual(2 * count + 1_024);

      // Their retention over, each is due once and forgotten (as the sweep does once its tombstone is
      // acknowledged); what is left of the index is bounded by the slack, not one entry per request until its
      // deadline.
      now = t0 + settings.closedRetentionMs;
      const due = store.takeDue(new Set([0]), now);
      expect(due).toHaveLength(count);
      for (const batchId of due) store.commitLocal(batchId, 0, null);
      expect(store.size).toBe(0);
      expect(store.indexedSize).toBeLessThanOrEqual(1_024);

      // A batch added after the rebuild is still acted on at its time; the old deadlines act on nothing.
      commit(
        'late',
        applyProgress(
          undefined,
          {
            kind: 'accepted',
            ...base,
            batchId: 'late',
            single: true,
            ids: ['late-1'],
            deadlineAt: now + 5_000,
          },
          BigInt(2 * count),
          now,
        ).state,
      );
      now += 5_000;
      expect(await aggregator.sweep()).toBe(1);
      expect(store.get('late')?.phase).toBe('closed');
      now = deadlineAt;
      expect(await aggregator.sweep()).toBe(1);
      expect(store.get('late')).toBeUndefined();
    } finally {
      await close();
    }
  });
});
