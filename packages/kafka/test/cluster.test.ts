import { startKafka, uniqueName, waitFor } from '@sluice/testkit';
import { describe, expect, it } from 'vitest';
import { type ConsumedRecord, createKafkaClient } from '../src/index.ts';

describe('a three-broker KRaft cluster started by the test kit', () => {
  it('keeps acknowledged records when one broker is killed, and takes the broker back', async () => {
    const cluster = await startKafka({ brokers: 3, forceJvm: true });
    const kafka = createKafkaClient('platformatic', {
      brokers: cluster.brokers,
      clientId: uniqueName('cluster'),
    });
    const admin = kafka.admin();
    const producer = kafka.producer();
    const topic = uniqueName('replicated');
    const records: ConsumedRecord[] = [];
    const consumer = kafka.consumer({ groupId: uniqueName('g'), topics: [topic], fromBeginning: true });
    try {
      expect(cluster.brokers).toHaveLength(3);
      await admin.createTopics([
        { name: topic, partitions: 3, replicationFactor: 3, config: { 'min.insync.replicas': '2' } },
      ]);
      const [description] = await admin.describeTopics([topic]);
      expect(description?.replicationFactor).toBe(3);
      await producer.send(
        Array.from({ length: 50 }, (_, i) => ({ topic, key: `k${i}`, value: `before-${i}` })),
      );

      await cluster.killBroker(2);
      // acks=all with min.insync.replicas=2 still succeeds with two of three brokers alive.
      await producer.send(
        Array.from({ length: 50 }, (_, i) => ({ topic, key: `k${i}`, value: `during-${i}` })),
      );
      await consumer.start({
        onBatch: async (batch) => {
          records.push(...batch.records);
        },
      });
      await waitFor('all 100 acknowledged records', () => records.length === 100, { timeoutMs: 60_000 });

      await cluster.restartBroker(2);
      await producer.send([{ topic, key: 'k-after', value: 'after' }]);
      await waitFor('the record produced after the restart', () => records.length === 101, {
        timeoutMs: 60_000,
      });
    } finally {
      await consumer.close();
      await producer.close();
      await admin.close();
      await cluster.stop();
    }
    // Three JVM brokers started, one killed and restarted: 35–40 s alone, and CI runs other suites beside it.
  }, 240_000);
});
