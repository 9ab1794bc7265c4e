import { createKafkajsClient } from './adapters/kafkajs.ts';
import { createPlatformaticClient } from './adapters/platformatic.ts';
import type { KafkaAdapterName, KafkaClient, KafkaConnection } from './types.ts';

export { KafkaError, type KafkaErrorCode, kafkaErrorCodes } from './errors.ts';
export { PartitionOffsets } from './offset-tracker.ts';
export {
  assertNoMismatches,
  compareTopic,
  type ProvisionReport,
  provisionTopics,
  type TopicMismatch,
} from './provision.ts';
export { RecordProcessor, type RecordProcessorOptions } from './record-processor.ts';
export { TableReader, type TableReaderOptions } from './table.ts';
export * from './types.ts';

/** Builds a client on the chosen adapter; everything above this call is adapter-agnostic. */
export function createKafkaClient(adapter: KafkaAdapterName, connection: KafkaConnection): KafkaClient {
  switch (adapter) {
    case 'platformatic':
      return createPlatformaticClient(connection);
    case 'kafkajs':
      return createKafkajsClient(connection);
    default:
      return assertNever(adapter);
  }
}

function assertNever(value: never): never {
  throw new Error(`unknown Kafka adapter: ${String(value)}`);
}
