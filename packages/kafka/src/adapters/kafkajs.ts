import type {
  IHeaders,
  Admin as KafkajsAdmin,
  Consumer as KafkajsConsumer,
  Kafka as KafkajsKafka,
  Producer as KafkajsProducer,
  RetryOptions,
  SASLOptions,
} from 'kafkajs';
// kafkajs is CommonJS with exports Node cannot detect statically, so it is imported whole.
import kafkajs from 'kafkajs';
import pRetry from 'p-retry';

const { ConfigResourceTypes, Kafka, logLevel, Partitioners } = kafkajs;

import { assignedPartitions, byTopic, chunk, lagOf, partitionKey, revokedPartitions } from '../assignment.ts';
import { KafkaError, kafkaErrorCodes } from '../errors.ts';
import { ProduceBatcher } from '../produce-batcher.ts';
import type {
  Admin,
  Consumer,
  ConsumerHandlers,
  ConsumerOptions,
  KafkaClient,
  KafkaConnection,
  PartitionLag,
  PartitionOffsetRange,
  Producer,
  ProducerOptions,
  ProducerRecord,
  RecordHeaders,
  TopicDescription,
  TopicPartition,
  TopicPartitionOffset,
  TopicSpec,
} from '../types.ts';
import { producerDefaults, producerDelivery } from './defaults.ts';
import { awaitTopicLeaders } from './topic-leaders.ts';

/** The kafkajs adapter. kafkajs is unmaintained since 2023 but speaks to Kafka 4.x (see docs/adr/0001). */
export function createKafkajsClient(connection: KafkaConnection): KafkaClient {
  const kafkaWith = (retry: RetryOptions) =>
    new Kafka({
      clientId: connection.clientId,
      brokers: connection.brokers,
      requestTimeout: connection.requestTimeoutMs ?? 30_000,
      connectionTimeout: Math.min(connection.requestTimeoutMs ?? 10_000, 10_000),
      ssl: connection.tls ?? false,
      ...(connection.sasl ? { sasl: connection.sasl as SASLOptions } : {}),
      // Errors reach callers as KafkaError; the library's own log lines would duplicate them without context.
      logLevel: logLevel.NOTHING,
      retry,
    });
  const kafka = kafkaWith({ retries: 8, initialRetryTime: 100, maxRetryTime: 5_000 });
  // kafkajs gives a producer's connections the client's retries, not the producer's own: producers get a client
  // whose retries last as long as a send's (producerDelivery), so that a send rides through a broker's failover.
  const producing = kafkaWith({
    retries: producerDelivery.retries,
    initialRetryTime: producerDelivery.initialDelayMs,
    maxRetryTime: producerDelivery.maxDelayMs,
  });
  return {
    adapter: 'kafkajs',
    producer: (options) => new KafkajsProducerAdapter(producing, options),
    consumer: (options) => new KafkajsConsumerAdapter(kafka, options),
    admin: () => new KafkajsAdminAdapter(kafka.admin()),
  };
}

class KafkajsProducerAdapter implements Producer {
  readonly #producer: KafkajsProducer;
  readonly #batcher: ProduceBatcher;
  #connecting: Promise<void> | undefined;

  constructor(kafka: KafkajsKafka, options: ProducerOptions = {}) {
    // kafkajs keeps idempotence only with one request in flight per broker connection.
    this.#producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    const settings = { ...producerDefaults, ...options };
    this.#batcher = new ProduceBatcher({
      lingerMs: settings.lingerMs,
      maxBatchRecords: settings.maxBatchRecords,
      sendBatch: (records) => this.#sendBatch(records),
    });
  }

  connect(): Promise<void> {
    this.#connecting ??= this.#producer.connect().catch((cause: unknown) => {
      this.#connecting = undefined;
      throw new KafkaError(kafkaErrorCodes.connect, 'producer could not connect', { cause, retryable: true });
    });
    return this.#connecting;
  }

  send(records: ProducerRecord[]): Promise<void> {
    return this.#batcher.send(records);
  }

  async close(): Promise<void> {
    await this.#batcher.close();
    if (this.#connecting !== undefined) await this.#producer.disconnect();
  }

  async #sendBatch(records: ProducerRecord[]): Promise<void> {
    await this.connect();
    const byTopicName = new Map<string, ProducerRecord[]>();
    for (const record of records) {
      const list = byTopicName.get(record.topic) ?? [];
      list.push(record);
      byTopicName.set(record.topic, list);
    }
    try {
      await this.#producer.sendBatch({
        acks: -1,
        topicMessages: [...byTopicName].map(([topic, list]) => ({
          topic,
          messages: list.map((record) => ({
            key: record.key ?? null,
            value: record.value,
            ...(record.headers ? { headers: record.headers } : {}),
            ...(record.partition !== undefined ? { partition: record.partition } : {}),
          })),
        })),
      });
    } catch (cause) {
      throw new KafkaError(kafkaErrorCodes.produce, 'produce request failed', { cause });
    }
  }
}

class KafkajsConsumerAdapter implements Consumer {
  readonly #consumer: KafkajsConsumer;
  readonly #options: ConsumerOptions;
  #assignment: TopicPartition[] = [];
  #joined = false;
  #closing = false;

  constructor(kafka: KafkajsKafka, options: ConsumerOptions) {
    this.#options = options;
    this.#consumer = kafka.consumer({
      groupId: options.groupId,
      sessionTimeout: options.sessionTimeoutMs ?? 30_000,
      heartbeatInterval: Math.min(3_000, Math.floor((options.sessionTimeoutMs ?? 30_000) / 3)),
      // Manual commits only: a partition's records may finish out of order and the owner commits the finished
      // prefix. Fetch progress is kept separately by kafkajs (resolved offsets), so fetching does not wait.
      allowAutoTopicCreation: false,
      // Short long-polls keep stop() and pause() responsive; the broker still returns as soon as data arrives.
      maxWaitTimeInMs: 1_000,
    });
  }

  async start(handlers: ConsumerHandlers): Promise<void> {
    let firstAssignment: () => void = () => {};
    const assigned = new Promise<void>((resolve) => {
      firstAssignment = resolve;
    });
    this.#consumer.on(this.#consumer.events.GROUP_JOIN, (event) => {
      const next = Object.entries(event.payload.memberAssignment).flatMap(([topic, partitions]) =>
        partitions.map((partition) => ({ topic, partition })),
      );
      const revoked = revokedPartitions(this.#assignment, next);
      const added = assignedPartitions(this.#assignment, next);
      this.#assignment = next;
      this.#joined = true;
      void this.#notify(handlers, revoked, added).finally(firstAssignment);
    });
    this.#consumer.on(this.#consumer.events.CRASH, (event) => {
      this.#joined = false;
      if (this.#closing) return;
      handlers.onError?.(
        new KafkaError(kafkaErrorCodes.consume, 'consumer crashed', {
          cause: event.payload.error,
          retryable: event.payload.restart,
        }),
      );
    });
    this.#consumer.on(this.#consumer.events.STOP, () => {
      this.#joined = false;
    });
    try {
      await this.#consumer.connect();
      // Right after a topic is created its leader may not be known to every broker yet; kafkajs then fails the
      // subscription's metadata refresh with a retriable error instead of retrying it itself.
      await pRetry(
        () =>
          this.#consumer.subscribe({
            topics: this.#options.topics,
            fromBeginning: this.#options.fromBeginning ?? false,
          }),
        {
          retries: 8,
          minTimeout: 100,
          maxTimeout: 2_000,
          shouldRetry: ({ error }) => (error as { retriable?: unknown }).retriable === true,
        },
      );
      await this.#consumer.run({
        autoCommit: false,
        partitionsConsumedConcurrently: this.#options.partitionConcurrency ?? 1,
        eachBatch: async ({ batch, isRunning, isStale }) => {
          const records = batch.messages.map((message) => ({
            topic: batch.topic,
            partition: batch.partition,
            offset: BigInt(message.offset),
            key: message.key,
            value: message.value,
            headers: headersToStrings(message.headers),
            timestamp: Number(message.timestamp),
          }));
          for (const part of chunk(records, this.#options.maxBatchRecords ?? 500)) {
            if (!isRunning() || isStale()) return;
            await handlers.onBatch({ topic: batch.topic, partition: batch.partition, records: part });
          }
        },
      });
    } catch (cause) {
      throw new KafkaError(kafkaErrorCodes.connect, 'consumer could not start', { cause, retryable: true });
    }
    await assigned;
  }

  async #notify(
    handlers: ConsumerHandlers,
    revoked: TopicPartition[],
    added: TopicPartition[],
  ): Promise<void> {
    try {
      if (revoked.length > 0) await handlers.onRevoked?.(revoked);
      if (added.length > 0) await handlers.onAssigned?.(added);
    } catch (cause) {
      handlers.onError?.(new KafkaError(kafkaErrorCodes.consume, 'rebalance hook failed', { cause }));
    }
  }

  async commit(offsets: TopicPartitionOffset[]): Promise<void> {
    if (offsets.length === 0) return;
    try {
      await this.#consumer.commitOffsets(
        offsets.map(({ topic, partition, offset }) => ({ topic, partition, offset: offset.toString() })),
      );
    } catch (cause) {
      throw new KafkaError(kafkaErrorCodes.commit, 'offset commit failed', { cause });
    }
  }

  pause(partitions: TopicPartition[]): void {
    if (partitions.length > 0) this.#consumer.pause(byTopic(partitions));
  }

  resume(partitions: TopicPartition[]): void {
    if (partitions.length > 0) this.#consumer.resume(byTopic(partitions));
  }

  assignment(): TopicPartition[] {
    return [...this.#assignment];
  }

  isJoined(): boolean {
    return this.#joined;
  }

  async close(): Promise<void> {
    this.#closing = true;
    // stop() waits for running eachBatch calls before leaving the group.
    await this.#consumer.stop();
    await this.#consumer.disconnect();
    this.#joined = false;
    this.#assignment = [];
  }
}

class KafkajsAdminAdapter implements Admin {
  readonly #admin: KafkajsAdmin;
  #connecting: Promise<void> | undefined;

  constructor(admin: KafkajsAdmin) {
    this.#admin = admin;
  }

  #connect(): Promise<void> {
    this.#connecting ??= this.#admin.connect().catch((cause: unknown) => {
      this.#connecting = undefined;
      throw new KafkaError(kafkaErrorCodes.connect, 'admin could not connect', { cause, retryable: true });
    });
    return this.#connecting;
  }

  async createTopics(topics: TopicSpec[]): Promise<void> {
    await this.#connect();
    await wrapAdmin('create topics', () =>
      this.#admin.createTopics({
        waitForLeaders: false,
        topics: topics.map((spec) => ({
          topic: spec.name,
          numPartitions: spec.partitions,
          replicationFactor: spec.replicationFactor,
          configEntries: Object.entries(spec.config).map(([name, value]) => ({ name, value })),
        })),
      }),
    );
    const names = topics.map((spec) => spec.name);
    await awaitTopicLeaders(async () => {
      const metadata = await wrapAdmin('describe topics', () =>
        this.#admin.fetchTopicMetadata({ topics: names }),
      );
      return names.every((name) =>
        metadata.topics
          .find((topic) => topic.name === name)
          ?.partitions.every((partition) => partition.leader >= 0),
      );
    });
  }

  async describeTopics(names: string[]): Promise<TopicDescription[]> {
    await this.#connect();
    const existing = await wrapAdmin('list topics', () => this.#admin.listTopics());
    const wanted = names.filter((name) => existing.includes(name));
    if (wanted.length === 0) return [];
    const metadata = await wrapAdmin('describe topics', () =>
      this.#admin.fetchTopicMetadata({ topics: wanted }),
    );
    const configs = await wrapAdmin('describe topic configs', () =>
      this.#admin.describeConfigs({
        includeSynonyms: false,
        resources: wanted.map((name) => ({ type: ConfigResourceTypes.TOPIC, name })),
      }),
    );
    return metadata.topics.map((topic) => {
      const resource = configs.resources.find((entry) => entry.resourceName === topic.name);
      return {
        name: topic.name,
        partitions: topic.partitions.length,
        replicationFactor: topic.partitions[0]?.replicas.length ?? 0,
        config: Object.fromEntries(
          (resource?.configEntries ?? []).map((entry) => [entry.configName, entry.configValue]),
        ),
      };
    });
  }

  async deleteTopics(names: string[]): Promise<void> {
    await this.#connect();
    await wrapAdmin('delete topics', () => this.#admin.deleteTopics({ topics: names }));
  }

  async topicOffsets(topics: string[]): Promise<PartitionOffsetRange[]> {
    await this.#connect();
    const ranges: PartitionOffsetRange[] = [];
    for (const topic of topics) {
      const offsets = await wrapAdmin('fetch topic offsets', () => this.#admin.fetchTopicOffsets(topic));
      for (const { partition, low, high } of offsets) {
        ranges.push({ topic, partition, start: BigInt(low), end: BigInt(high) });
      }
    }
    return ranges.sort((a, b) => partitionKey(a).localeCompare(partitionKey(b)));
  }

  async groupLag(groupId: string, topics: string[]): Promise<PartitionLag[]> {
    const ranges = await this.topicOffsets(topics);
    const committed = await wrapAdmin('fetch group offsets', () =>
      this.#admin.fetchOffsets({ groupId, topics }),
    );
    return ranges.map((range) => {
      const offset = committed
        .find((entry) => entry.topic === range.topic)
        ?.partitions.find((p) => p.partition === range.partition)?.offset;
      return lagOf(range, BigInt(offset ?? '-1'));
    });
  }

  async close(): Promise<void> {
    if (this.#connecting !== undefined) await this.#admin.disconnect();
  }
}

async function wrapAdmin<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (cause) {
    throw new KafkaError(kafkaErrorCodes.admin, `${what} failed`, { cause });
  }
}

function headersToStrings(headers: IHeaders | undefined): RecordHeaders {
  const result: RecordHeaders = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    const single = Array.isArray(value) ? value[value.length - 1] : value;
    if (single !== undefined) result[name] = single.toString();
  }
  return result;
}
