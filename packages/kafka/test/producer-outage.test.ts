import { setTimeout as delay } from 'node:timers/promises';
import { type KafkaHandle, startKafka, uniqueName, waitFor } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConsumedRecord, createKafkaClient, kafkaAdapters } from '../src/index.ts';

// A broker of its own, killed and restarted by the test.
let kafka: KafkaHandle;
beforeAll(async () => {
  kafka = await startKafka({ forceJvm: true });
}, 180_000);
afterAll(async () => {
  await kafka?.stop();
});

describe.each(kafkaAdapters)('a send on the %s adapter while the broker is away', (adapter) => {
  it('keeps trying until the broker is back, then is acknowledged, written once', async () => {
    const client = createKafkaClient(adapter, { brokers: kafka.brokers, clientId: uniqueName('outage') });
    const admin = client.admin();
    const producer = client.producer();
    const topic = uniqueName('outage');
    await admin.createTopics([{ name: topic, partitions: 3, replicationFactor: 1, config: {} }]);
    await admin.close();
    await producer.connect();
    await producer.send([{ topic, key: 'before', value: 'before' }]);

    await kafka.killBroker(0);
    const outcome = producer
      .send(['a', 'b', 'c', 'd'].map((key) => ({ topic, key, value: `during-${key}` })))
      .then(
        () => 'acknowledged',
        (error: unknown) => `failed: ${(error as Error).message}: ${String((error as Error).cause)}`,
      );
    // The outage itself (not a wait for something): longer than the 2 s of retries the clients had before.
    await delay(4_000);
    await kafka.restartBroker(0);
    expect(await outcome).toBe('acknowledged');

    const records: ConsumedRecord[] = [];
    const consumer = client.consumer({ groupId: uniqueName('outage'), topics: [topic], fromBeginning: true });
    await consumer.start({
      onBatch: async (batch) => {
        records.push(...batch.records);
      },
    });
    try {
      await waitFor('the five records', () => records.length >= 5, { timeoutMs: 60_000 });
      expect(records.map((record) => record.value?.toString()).sort()).toEqual([
        'before',
        'during-a',
        'during-b',
        'during-c',
        'during-d',
      ]);
    } finally {
      await consumer.close();
      await producer.close();
    }
  }, 180_000);
});
