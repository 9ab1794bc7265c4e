import { join } from 'node:path';
import { groupName, topicName } from '@sluice/contracts';
import { type ConsumedRecord, createKafkaClient, kafkaAdapters } from '@sluice/kafka';
import { ServiceProcess, uniqueName, waitFor } from '@sluice/testkit';
import { describe, expect, inject, it } from 'vitest';

const brokers = inject('kafkaBrokers');
const fixture = join(import.meta.dirname, 'fixtures', 'consumer-service.ts');

describe.each(kafkaAdapters)('a consuming service stopped with SIGTERM (%s adapter)', (adapter) => {
  it('commits what it finished, and what was in flight is processed after the restart', async () => {
    const prefix = `${uniqueName('shutdown')}.`;
    const kafka = createKafkaClient(adapter, { brokers: brokers.split(','), clientId: prefix });
    const env = {
      KAFKA_BROKERS: brokers,
      KAFKA_CLIENT: adapter,
      KAFKA_TOPIC_PREFIX: prefix,
      KAFKA_TOPIC_PARTITIONS: '1',
      DRAIN_TIMEOUT_MS: '500',
    };
    const results: Array<{ offset: string; run: string }> = [];
    const reader = kafka.consumer({
      groupId: `${prefix}reader`,
      topics: [topicName('results', prefix)],
      fromBeginning: true,
    });
    const producer = kafka.producer();
    const admin = kafka.admin();
    const first = await ServiceProcess.start({
      name: 'batch-worker',
      entry: fixture,
      env: { ...env, FIXTURE_RUN: '1', FIXTURE_SLOW_BLOCKS: 'true' },
    });
    let second: ServiceProcess | undefined;
    try {
      await first.waitReady();
      await reader.start({
        onBatch: async (batch) => {
          results.push(...batch.records.map((r: ConsumedRecord) => JSON.parse(String(r.value))));
        },
      });
      const values = Array.from({ length: 15 }, (_, i) => (i === 10 ? 'slow' : `r${i}`));
      await producer.send(values.map((value) => ({ topic: topicName('requests', prefix), key: 'k', value })));
      const fromRun = (run: string) =>
        new Set(results.filter((r) => r.run === run).map((r) => Number(r.offset)));
      await waitFor('run 1 to process every record but the slow one', () => fromRun('1').size === 14);

      const exit = await first.stop('SIGTERM');
      expect(exit.code).toBe(0);
      expect(first.output()).toContain('records left unfinished for redelivery');
      const [lag] = await admin.groupLag(groupName('batchWorker', prefix), [topicName('requests', prefix)]);
      // Offsets 0-9 finished; 10 was in flight, so the committed position stops there.
      expect(lag?.committed).toBe(10n);

      second = await ServiceProcess.start({
        name: 'batch-worker',
        entry: fixture,
        env: { ...env, FIXTURE_RUN: '2', FIXTURE_SLOW_BLOCKS: 'false' },
      });
      await second.waitReady();
      await waitFor(
        'run 2 to process the interrupted record and those after it',
        () => fromRun('2').size === 5,
      );
      expect([...fromRun('2')].sort((a, b) => a - b)).toEqual([10, 11, 12, 13, 14]);
      expect([...fromRun('1')].filter((offset) => offset < 10)).toHaveLength(10);
    } finally {
      await second?.stop('SIGTERM');
      await first.stop('SIGKILL');
      await reader.close();
      await producer.close();
      await admin.close();
    }
  });
});
