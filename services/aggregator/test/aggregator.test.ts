import { codecs, type ProgressMessage, progressRecord } from '@sluice/contracts';
import type { ConsumedRecord, Producer, ProducerRecord } from '@sluice/kafka';
import { uniqueName, waitFor } from '@sluice/testkit';
import { describe, expect, it } from 'vitest';
import { aggregatorFixture, aggregatorOn } from './fixtures.ts';

const settings = { closedRetentionMs: 60_000, orphanTimeoutMs: 3_600_000 };

describe('Aggregator', () => {
  it('writes a status that failed to reach Kafka again, even when the new batch state did reach it', async () => {
    const fixture = await aggregatorFixture(settings);
    const { kafka, admin, topics, producer: real, store, close } = fixture;
    // The first produce that carries a status fails half-way, as when the broker leading the status partition
    // dies: every other record of it is written, the status is not, and the call rejects. By then this aggregator
    // has read its own half-written state back from the changelog, as its table reader does.
    let failed = false;
    const producer: Producer = {
      connect: () => real.connect(),
      close: () => real.close(),
      send: async (records: ProducerRecord[]) => {
        if (failed || !records.some((record) => record.topic === topics.status)) return real.send(records);
        failed = true;
        const written = records.filter((record) => record.topic !== topics.status);
        await real.send(written);
        if (written.some((record) => record.topic === topics.state)) {
          await waitFor(
            'the half-written state to be read back',
            () => store.get('b1')?.items.r1 !== undefined,
          );
        }
        throw new Error('NOT_LEADER_OR_FOLLOWER');
      },
    };
    const aggregator = aggregatorOn(fixture, settings, { producer });
    const signal = new AbortController().signal;
    const record = (message: ProgressMessage, offset: bigint): ConsumedRecord => {
      const produced = progressRecord('results', message);
      return {
        topic: 'results',
        partition: 0,
        offset,
        key: Buffer.from(produced.key),
        value: produced.value,
        headers: produced.headers,
        timestamp: Date.now(),
      };
    };
    try {
      const base = { batchId: 'b1', tenant: 'acme', route: 'orders', acceptedAt: 1_000 };
      await aggregator.handle(
        record({ kind: 'accepted', ...base, single: true, ids: ['r1'], deadlineAt: Date.now() + 60_000 }, 0n),
        signal,
      );
      await aggregator.handle(
        record(
          {
            kind: 'finished',
            ...base,
            id: 'r1',
            status: 'succeeded',
            attempts: [{ number: 1, startedAt: 1_100, durationMs: 5, status: 200 }],
            result: { status: 200, headers: {}, body: 'ok' },
            startedAt: 1_100,
            finishedAt: 1_200,
          },
          1n,
        ),
        signal,
      );
      expect(failed).toBe(true);
      const statuses = await waitFor('the terminal status', async () => {
        const [range] = await admin.topicOffsets([topics.status]);
        if (range === undefined || range.end === 0n) return undefined;
        const consumer = kafka.consumer({
          groupId: uniqueName('status-reader'),
          topics: [topics.status],
          fromBeginning: true,
        });
        const found: string[] = [];
        await consumer.start({
          onBatch: async (batch) => {
            for (const status of batch.records) {
              const decoded = codecs.status.decode(status);
              if (decoded.ok) found.push(`${decoded.value.id}:${decoded.value.status}`);
            }
          },
        });
        await waitFor('the status topic', () => BigInt(found.length) >= range.end);
        await consumer.close();
        return found;
      });
      expect(statuses).toContain('r1:succeeded');
    } finally {
      await close();
    }
  });
});
