/**
 * Sluice's own Kafka interface. Services depend on these types only, never on a client library, so that the
 * client underneath (kafkajs or @platformatic/kafka) can be swapped by configuration.
 */

export const kafkaAdapters = ['platformatic', 'kafkajs'] as const;
export type KafkaAdapterName = (typeof kafkaAdapters)[number];

export interface KafkaConnection {
  brokers: string[];
  clientId: string;
  /** Connection and request timeout toward the brokers. */
  requestTimeoutMs?: number;
  tls?: boolean;
  sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
}

export interface TopicPartition {
  topic: string;
  partition: number;
}

export interface TopicPartitionOffset extends TopicPartition {
  /** The next offset to read, as Kafka commits it: the last processed offset plus one. */
  offset: bigint;
}

/** Header values are UTF-8 strings: every header Sluice sends (ids, tenant, trace context) is text. */
export type RecordHeaders = Record<string, string>;

export interface ProducerRecord {
  topic: string;
  key?: string | Buffer | null;
  value: string | Buffer | null;
  headers?: RecordHeaders;
  /** Explicit partition; otherwise the key decides (murmur2, as the Java client does). */
  partition?: number;
}

export interface ConsumedRecord {
  topic: string;
  partition: number;
  offset: bigint;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeaders;
  /** Broker or producer timestamp, epoch milliseconds. */
  timestamp: number;
}

export interface RecordBatch extends TopicPartition {
  /** Records of one partition, in offset order. */
  records: ConsumedRecord[];
}

export interface ProducerOptions {
  /**
   * How long a send waits for other concurrent sends to join its request. Records from every caller inside the
   * window travel in one produce request; 0 still batches callers that arrive while a request is in flight.
   */
  lingerMs?: number;
  /** Upper bound of records in one produce request. */
  maxBatchRecords?: number;
}

export interface Producer {
  /** Connects and initialises the idempotent producer; send() connects too, this makes failures visible early. */
  connect(): Promise<void>;
  /**
   * Resolves once the broker has acknowledged every record (acks=all, idempotent). Concurrent calls are
   * coalesced into shared produce requests.
   */
  send(records: ProducerRecord[]): Promise<void>;
  /** Sends what is queued, then disconnects. */
  close(): Promise<void>;
}

export interface ConsumerOptions {
  groupId: string;
  topics: string[];
  /** Where a group without a committed offset starts. */
  fromBeginning?: boolean;
  sessionTimeoutMs?: number;
  /** How many partitions' batches may be handled at once. Batches of one partition are always sequential. */
  partitionConcurrency?: number;
  /** Cap on one partition's batch. */
  maxBatchRecords?: number;
  /**
   * How partitions move when members join or leave. `cooperative` (default): only the partitions that change owner
   * move, in two rounds, so the others keep their in-flight work. `eager`: every member gives up everything and the
   * group is assigned afresh in one round; right for consumers whose records are applied idempotently and fast,
   * where a second round costs more than re-reading a little. (kafkajs rebalances eagerly either way.)
   */
  rebalancing?: 'cooperative' | 'eager';
}

export interface ConsumerHandlers {
  /**
   * Handles one batch of one partition. Offsets are never committed implicitly: the handler (or code it
   * hands records to) calls {@link Consumer.commit} for what is finished.
   */
  onBatch(batch: RecordBatch): Promise<void>;
  /** Called after partitions are assigned, before any of their records reach onBatch. */
  onAssigned?(partitions: TopicPartition[]): void | Promise<void>;
  /** Called when partitions are taken away; commit what is finished for them here. */
  onRevoked?(partitions: TopicPartition[]): void | Promise<void>;
  /** A fault the consumer could not recover from by itself (for example a lost group membership). */
  onError?(error: Error): void;
}

export interface Consumer {
  /** Joins the group and starts fetching. Resolves once the first assignment has been received. */
  start(handlers: ConsumerHandlers): Promise<void>;
  commit(offsets: TopicPartitionOffset[]): Promise<void>;
  /** Stops fetching the given partitions; records already handed to onBatch are unaffected. */
  pause(partitions: TopicPartition[]): void;
  resume(partitions: TopicPartition[]): void;
  assignment(): TopicPartition[];
  /** True while the consumer is a member of its group. */
  isJoined(): boolean;
  /** Stops fetching, waits for running batch handlers, then leaves the group. */
  close(): Promise<void>;
}

export interface TopicSpec {
  name: string;
  partitions: number;
  replicationFactor: number;
  /** Topic-level configuration, e.g. `cleanup.policy`, `retention.ms`, `min.insync.replicas`. */
  config: Record<string, string>;
}

export interface TopicDescription {
  name: string;
  partitions: number;
  replicationFactor: number;
  config: Record<string, string>;
}

export interface PartitionLag extends TopicPartition {
  /** Committed offset of the group, or -1 when the group has none for this partition. */
  committed: bigint;
  /** Log end offset (high watermark). */
  end: bigint;
  lag: bigint;
}

export interface PartitionOffsetRange extends TopicPartition {
  /** First offset still in the log. */
  start: bigint;
  /** Log end offset: the offset the next record will get. */
  end: bigint;
}

export interface Admin {
  createTopics(topics: TopicSpec[]): Promise<void>;
  /** Descriptions of the topics that exist; missing names are left out. */
  describeTopics(names: string[]): Promise<TopicDescription[]>;
  deleteTopics(names: string[]): Promise<void>;
  /** First and next offsets of every partition of the given topics. */
  topicOffsets(topics: string[]): Promise<PartitionOffsetRange[]>;
  /** Lag of a group on the given topics, per partition. */
  groupLag(groupId: string, topics: string[]): Promise<PartitionLag[]>;
  close(): Promise<void>;
}

export interface KafkaClient {
  readonly adapter: KafkaAdapterName;
  producer(options?: ProducerOptions): Producer;
  consumer(options: ConsumerOptions): Consumer;
  admin(): Admin;
}
