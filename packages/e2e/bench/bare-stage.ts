/**
 * What the bare stages of `bare-pipeline.ts` share: their Kafka client (the services' own, same settings), topic
 * names, and a consume loop that decodes with the contracts' codecs, hands each partition's batch over, and
 * commits once the batch is handled. No retries, no dead letters, no tracing: a baseline, not a service.
 */
import { recordHeaders, topicName } from '@sluice/contracts';
import { type ConsumedRecord, createKafkaClient, type KafkaAdapterName } from '@sluice/kafka';

export const prefix = process.env.KAFKA_TOPIC_PREFIX ?? '';
export const kafka = createKafkaClient((process.env.KAFKA_CLIENT ?? 'platformatic') as KafkaAdapterName, {
  brokers: (process.env.KAFKA_BROKERS ?? '').split(','),
  clientId: `bare-${process.argv[1]?.split('/').pop()}`,
});
export const topics = {
  requests: topicName('requests', prefix),
  status: topicName('status', prefix),
  results: topicName('results', prefix),
};

/** The record headers the services put on every record of one request. */
export function requestHeaders(id: string, tenant: string, batchId = id): Record<string, string> {
  return { [recordHeaders.requestId]: id, [recordHeaders.batchId]: batchId, [recordHeaders.tenant]: tenant };
}

/** Consumes `topic` in `group`, `handle` called per partition batch, offsets committed after it. */
export async function consumeEach(
  group: string,
  topic: string,
  handle: (records: ConsumedRecord[]) => Promise<void>,
): Promise<{ close(): Promise<void> }> {
  const consumer = kafka.consumer({ groupId: group, topics: [topic], partitionConcurrency: 6 });
  await consumer.start({
    onBatch: async (batch) => {
      await handle(batch.records);
      const last = batch.records.at(-1);
      if (last !== undefined) {
        await consumer.commit([{ topic: batch.topic, partition: batch.partition, offset: last.offset + 1n }]);
      }
    },
  });
  return consumer;
}

/** Tells the parent it is ready (one line on stdout), then exits cleanly on SIGTERM. */
export function ready(what: string, close: () => Promise<void>): void {
  console.log(`${what} ready`);
  process.once('SIGTERM', () => {
    void close().then(() => process.exit(0));
  });
}
