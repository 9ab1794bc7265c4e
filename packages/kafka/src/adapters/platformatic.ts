import {
  ConfigResourceTypes,
  compatibilityPartitioner,
  type Message,
  type MessagesStream,
  Admin as PlatformaticAdmin,
  Consumer as PlatformaticConsumer,
  Producer as PlatformaticProducer,
  ProduceAcks,
} from '@platformatic/kafka';
import pRetry from 'p-retry';
import { assignedPartitions, lagOf, partitionKey, revokedPartitions } from '../assignment.ts';
import { KafkaError, kafkaErrorCodes } from '../errors.ts';
import { ProduceBatcher } from '../produce-batcher.ts';
import type {
  Admin,
  ConsumedRecord,
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
  TopicDescription,
  TopicPartition,
  TopicPartitionOffset,
  TopicSpec,
} from '../types.ts';
import { producerDefaults, producerDelivery } from './defaults.ts';
import { perTopicCooperativeAssigner } from './per-topic-assigner.ts';
import { awaitTopicLeaders } from './topic-leaders.ts';

/** The @platformatic/kafka adapter. */
export function createPlatformaticClient(connection: KafkaConnection): KafkaClient {
  const base = {
    clientId: connection.clientId,
    bootstrapBrokers: connection.brokers,
    timeout: connection.requestTimeoutMs ?? 30_000,
    connectTimeout: Math.min(connection.requestTimeoutMs ?? 10_000, 10_000),
    retries: 8,
    retryDelay: 250,
    ...(connection.tls ? { tls: {} } : {}),
    ...(connection.sasl
      ? {
          sasl: {
            mechanism: connection.sasl.mechanism.toUpperCase() as 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512',
            username: connection.sasl.username,
            password: connection.sasl.password,
          },
        }
      : {}),
  };
  return {
    adapter: 'platformatic',
    producer: (options) => new PlatformaticProducerAdapter(base, options),
    consumer: (options) => new PlatformaticConsumerAdapter(base, options),
    admin: () => new PlatformaticAdminAdapter(new PlatformaticAdmin(base)),
  };
}

type BaseOptions = ConstructorParameters<typeof PlatformaticAdmin>[0];

class PlatformaticProducerAdapter implements Producer {
  readonly #producer: PlatformaticProducer;
  readonly #batcher: ProduceBatcher;
  #connecting: Promise<void> | undefined;

  constructor(base: BaseOptions, options: ProducerOptions = {}) {
    this.#producer = new PlatformaticProducer({
      ...base,
      retries: producerDelivery.retries,
      retryDelay: (_client, _operation, attempt) => producerDelivery.delayMs(attempt),
      idempotent: true,
      acks: ProduceAcks.ALL,
      // The Java client's partitioner, so that a key lands on the same partition whichever adapter produced it.
      partitioner: (message, key) =>
        key === undefined ? Math.floor(Math.random() * 2 ** 31) : compatibilityPartitioner(message, key),
    });
    const settings = { ...producerDefaults, ...options };
    this.#batcher = new ProduceBatcher({
      lingerMs: settings.lingerMs,
      maxBatchRecords: settings.maxBatchRecords,
      sendBatch: (records) => this.#sendBatch(records),
    });
  }

  connect(): Promise<void> {
    this.#connecting ??= this.#producer
      .initIdempotentProducer({ idempotent: true, acks: ProduceAcks.ALL })
      .then(() => undefined)
      .catch((cause: unknown) => {
        this.#connecting = undefined;
        throw new KafkaError(kafkaErrorCodes.connect, 'producer could not connect', {
          cause,
          retryable: true,
        });
      });
    return this.#connecting;
  }

  send(records: ProducerRecord[]): Promise<void> {
    return this.#batcher.send(records);
  }

  async close(): Promise<void> {
    await this.#batcher.close();
    await this.#producer.close();
  }

  async #sendBatch(records: ProducerRecord[]): Promise<void> {
    await this.connect();
    try {
      await this.#producer.send({
        messages: records.map((record) => ({
          topic: record.topic,
          // An absent value is written as null: a tombstone on a compacted topic.
          ...(record.value !== null ? { value: toBuffer(record.value) } : {}),
          ...(record.key !== undefined && record.key !== null ? { key: toBuffer(record.key) } : {}),
          ...(record.partition !== undefined ? { partition: record.partition } : {}),
          ...(record.headers
            ? {
                headers: new Map(
                  Object.entries(record.headers).map(([name, value]) => [
                    Buffer.from(name),
                    Buffer.from(value),
                  ]),
                ),
              }
            : {}),
        })),
      });
    } catch (cause) {
      throw new KafkaError(kafkaErrorCodes.produce, 'produce request failed', { cause });
    }
  }
}

interface PartitionQueue {
  tp: TopicPartition;
  records: ConsumedRecord[];
  running: boolean;
}

/**
 * @platformatic/kafka delivers one message stream for all assigned partitions and can only pause the whole
 * stream. This adapter regroups the stream into per-partition batches, runs one batch per partition at a time,
 * and holds back records of paused partitions. Buffered records are bounded: above the bound the whole stream
 * pauses until handlers catch up, which is the price of a client without per-partition fetch control.
 */
class PlatformaticConsumerAdapter implements Consumer {
  readonly #base: BaseOptions;
  /** Replaced by a new client when the old one has given up its group (see #recover). */
  #consumer: PlatformaticConsumer;
  readonly #options: ConsumerOptions;
  readonly #sessionTimeoutMs: number;
  #firstAssignment: () => void = () => {};
  #notJoinedSince: number | undefined;
  #watchdog: NodeJS.Timeout | undefined;
  readonly #maxBuffered: number;
  readonly #queues = new Map<string, PartitionQueue>();
  readonly #paused = new Set<string>();
  readonly #idle = new Set<() => void>();
  #handlers: ConsumerHandlers | undefined;
  #stream: MessagesStream<Buffer, Buffer, Buffer, Buffer> | undefined;
  #assignment: TopicPartition[] = [];
  #buffered = 0;
  #running = 0;
  #streamPausedByUs = false;
  #drainScheduled = false;
  #joined = false;
  #closing = false;
  #recovering = false;

  constructor(base: BaseOptions, options: ConsumerOptions) {
    this.#base = base;
    this.#options = options;
    this.#maxBuffered = (options.maxBatchRecords ?? 500) * 4;
    this.#sessionTimeoutMs = options.sessionTimeoutMs ?? 30_000;
    this.#consumer = this.#createConsumer();
  }

  #createConsumer(): PlatformaticConsumer {
    const sessionTimeout = this.#sessionTimeoutMs;
    const consumer = new PlatformaticConsumer({
      ...this.#base,
      groupId: this.#options.groupId,
      autocommit: false,
      ...(this.#options.rebalancing === 'eager'
        ? { protocols: [{ name: 'roundrobin', version: 1 }] }
        : {
            // Incremental rebalancing: a member that joins or leaves moves only the partitions that change owner, so
            // the others keep theirs (and their finished, not yet committed work) instead of all being revoked at once.
            protocols: [{ name: 'cooperative-sticky', version: 1 }],
            // Balanced per topic: a member reading several topics gets a share of each (see the assigner).
            partitionAssigner: perTopicCooperativeAssigner,
          }),
      sessionTimeout,
      heartbeatInterval: Math.min(3_000, Math.floor(sessionTimeout / 3)),
      maxWaitTime: 500,
    });
    consumer.on('consumer:group:join', (payload) => {
      if (consumer !== this.#consumer) return;
      const next = (payload.assignments ?? []).flatMap(({ topic, partitions }) =>
        partitions.map((partition) => ({ topic, partition })),
      );
      const revoked = revokedPartitions(this.#assignment, next);
      const added = assignedPartitions(this.#assignment, next);
      this.#assignment = next;
      this.#setJoined(true);
      for (const tp of revoked) this.#dropQueue(tp);
      void this.#notify(revoked, added).finally(() => this.#firstAssignment());
    });
    consumer.on('consumer:group:leave', () => {
      if (consumer === this.#consumer) this.#setJoined(false);
    });
    // The client gives up on its group when a rejoin fails (the broker was away longer than its retries): it
    // then sends no heartbeats and fetches nothing. Such a member is replaced by a new one (see #recover).
    consumer.on('error', (cause: Error) => {
      if (consumer === this.#consumer) this.#recover(cause);
    });
    return consumer;
  }

  #setJoined(joined: boolean): void {
    if (joined === this.#joined) return;
    this.#joined = joined;
    this.#notJoinedSince = joined ? undefined : Date.now();
  }

  async start(handlers: ConsumerHandlers): Promise<void> {
    this.#handlers = handlers;
    const assigned = new Promise<void>((resolve) => {
      this.#firstAssignment = resolve;
    });
    await this.#openStream();
    await assigned;
    // Whatever the cause, a member out of its group for longer than half a session (a rebalance takes seconds) is
    // replaced.
    const patienceMs = Math.max(10_000, this.#sessionTimeoutMs / 2);
    this.#watchdog = setInterval(() => {
      const since = this.#notJoinedSince;
      if (since !== undefined && Date.now() - since > patienceMs) {
        this.#recover(
          new Error(`not a member of group ${this.#options.groupId} for ${Date.now() - since} ms`),
        );
      }
    }, 2_000);
    this.#watchdog.unref();
  }

  async #openStream(): Promise<void> {
    let stream: MessagesStream<Buffer, Buffer, Buffer, Buffer>;
    try {
      stream = await this.#consumer.consume({
        topics: this.#options.topics,
        mode: 'committed',
        fallbackMode: this.#options.fromBeginning ? 'earliest' : 'latest',
        autocommit: false,
      });
    } catch (cause) {
      throw new KafkaError(kafkaErrorCodes.connect, 'consumer could not start', { cause, retryable: true });
    }
    this.#stream = stream;
    stream.on('data', (message: Message<Buffer, Buffer, Buffer, Buffer>) => this.#enqueue(message));
    stream.on('error', (cause: Error) => {
      if (this.#stream === stream) this.#recover(cause);
    });
  }

  /**
   * Replaces the client's member with a new one and joins with it, with backoff, until that works or the
   * consumer closes. Every partition counts as revoked meanwhile (records buffered for it are dropped, so this
   * member handles nothing twice), and the new assignment is announced as usual once the group is joined.
   */
  #recover(cause: unknown): void {
    if (this.#closing || this.#recovering) return;
    this.#recovering = true;
    this.#setJoined(false);
    this.#handlers?.onError?.(
      new KafkaError(kafkaErrorCodes.consume, 'consumer lost its group; joining again', {
        cause,
        retryable: true,
      }),
    );
    void (async () => {
      const revoked = this.#assignment;
      this.#assignment = [];
      for (const tp of revoked) this.#dropQueue(tp);
      await this.#notify(revoked, []);
      const previous = this.#consumer;
      this.#stream = undefined;
      this.#consumer = this.#createConsumer();
      // The old member may not be able to leave politely (the broker may still be away): its session expires.
      void previous.close(true).catch(() => {});
      await pRetry(() => this.#openStream(), {
        retries: Number.POSITIVE_INFINITY,
        minTimeout: 250,
        maxTimeout: 5_000,
        shouldRetry: () => !this.#closing,
        // #openStream throws only KafkaErrors.
        onFailedAttempt: ({ error }) => this.#handlers?.onError?.(error as KafkaError),
      }).catch(() => {
        // Given up only because the consumer closes.
      });
      this.#recovering = false;
    })();
  }

  async #notify(revoked: TopicPartition[], added: TopicPartition[]): Promise<void> {
    try {
      if (revoked.length > 0) await this.#handlers?.onRevoked?.(revoked);
      if (added.length > 0) await this.#handlers?.onAssigned?.(added);
    } catch (cause) {
      this.#handlers?.onError?.(new KafkaError(kafkaErrorCodes.consume, 'rebalance hook failed', { cause }));
    }
  }

  #enqueue(message: Message<Buffer, Buffer, Buffer, Buffer>): void {
    const tp = { topic: message.topic, partition: message.partition };
    const key = partitionKey(tp);
    let queue = this.#queues.get(key);
    if (queue === undefined) {
      queue = { tp, records: [], running: false };
      this.#queues.set(key, queue);
    }
    const headers: Record<string, string> = {};
    for (const [name, value] of message.headers) headers[name.toString()] = value.toString();
    queue.records.push({
      topic: message.topic,
      partition: message.partition,
      offset: message.offset,
      key: message.key ?? null,
      value: message.value ?? null,
      headers,
      timestamp: Number(message.timestamp),
    });
    this.#buffered += 1;
    if (this.#buffered >= this.#maxBuffered && !this.#streamPausedByUs) {
      this.#streamPausedByUs = true;
      this.#stream?.pause();
    }
    this.#scheduleDrain();
  }

  #scheduleDrain(): void {
    if (this.#drainScheduled) return;
    this.#drainScheduled = true;
    // Messages of one fetch response arrive as consecutive 'data' events; waiting a turn groups them.
    setImmediate(() => {
      this.#drainScheduled = false;
      this.#drain();
    });
  }

  #drain(): void {
    const limit = this.#options.partitionConcurrency ?? 1;
    for (const [key, queue] of this.#queues) {
      if (this.#running >= limit || this.#closing) return;
      if (queue.running || queue.records.length === 0 || this.#paused.has(key)) continue;
      const records = queue.records.splice(0, this.#options.maxBatchRecords ?? 500);
      queue.running = true;
      this.#running += 1;
      void this.#runBatch(queue, records);
    }
  }

  async #runBatch(queue: PartitionQueue, records: ConsumedRecord[]): Promise<void> {
    try {
      await this.#handlers?.onBatch({ ...queue.tp, records });
    } catch (cause) {
      this.#handlers?.onError?.(new KafkaError(kafkaErrorCodes.consume, 'batch handler failed', { cause }));
    } finally {
      queue.running = false;
      this.#running -= 1;
      this.#buffered -= records.length;
      if (this.#streamPausedByUs && this.#buffered < this.#maxBuffered / 2 && !this.#closing) {
        this.#streamPausedByUs = false;
        this.#stream?.resume();
      }
      if (this.#running === 0) for (const notify of this.#idle) notify();
      this.#scheduleDrain();
    }
  }

  #dropQueue(tp: TopicPartition): void {
    const key = partitionKey(tp);
    const queue = this.#queues.get(key);
    if (queue === undefined) return;
    this.#buffered -= queue.records.length;
    queue.records = [];
    this.#paused.delete(key);
  }

  async commit(offsets: TopicPartitionOffset[]): Promise<void> {
    if (offsets.length === 0) return;
    try {
      await this.#consumer.commit({
        offsets: offsets.map(({ topic, partition, offset }) => ({
          topic,
          partition,
          offset,
          leaderEpoch: -1,
        })),
      });
    } catch (cause) {
      throw new KafkaError(kafkaErrorCodes.commit, 'offset commit failed', { cause });
    }
  }

  pause(partitions: TopicPartition[]): void {
    for (const tp of partitions) this.#paused.add(partitionKey(tp));
  }

  resume(partitions: TopicPartition[]): void {
    for (const tp of partitions) this.#paused.delete(partitionKey(tp));
    this.#scheduleDrain();
  }

  assignment(): TopicPartition[] {
    return [...this.#assignment];
  }

  isJoined(): boolean {
    return this.#joined;
  }

  async close(): Promise<void> {
    this.#closing = true;
    if (this.#watchdog !== undefined) clearInterval(this.#watchdog);
    this.#stream?.pause();
    if (this.#running > 0) {
      await new Promise<void>((resolve) => {
        const notify = () => {
          this.#idle.delete(notify);
          resolve();
        };
        this.#idle.add(notify);
      });
    }
    await this.#stream?.close();
    await this.#consumer.close();
    this.#setJoined(false);
    this.#assignment = [];
  }
}

class PlatformaticAdminAdapter implements Admin {
  readonly #admin: PlatformaticAdmin;

  constructor(admin: PlatformaticAdmin) {
    this.#admin = admin;
  }

  async createTopics(topics: TopicSpec[]): Promise<void> {
    // Topic configs apply to every topic of a CreateTopics call here, so each topic gets its own call.
    for (const spec of topics) {
      await wrapAdmin('create topics', () =>
        this.#admin.createTopics({
          topics: [spec.name],
          partitions: spec.partitions,
          replicas: spec.replicationFactor,
          configs: Object.entries(spec.config).map(([name, value]) => ({ name, value })),
        }),
      );
    }
    const names = topics.map((spec) => spec.name);
    await awaitTopicLeaders(async () => {
      // platformatic reports a topic the answering broker does not know yet as a user error that cannot be
      // retried; for a topic this call has just created that answer is transient by construction.
      const metadata = await this.#admin
        .metadata({ topics: names, forceUpdate: true })
        .catch((cause: unknown) => {
          throw new KafkaError(kafkaErrorCodes.admin, 'describe topics failed', { cause, retryable: true });
        });
      return names.every((name) =>
        metadata.topics.get(name)?.partitions.every((partition) => partition.leader >= 0),
      );
    });
  }

  async describeTopics(names: string[]): Promise<TopicDescription[]> {
    const existing = await wrapAdmin('list topics', () => this.#admin.listTopics());
    const wanted = names.filter((name) => existing.includes(name));
    if (wanted.length === 0) return [];
    const metadata = await wrapAdmin('describe topics', () =>
      this.#admin.metadata({ topics: wanted, forceUpdate: true }),
    );
    const configs = await wrapAdmin('describe topic configs', () =>
      this.#admin.describeConfigs({
        resources: wanted.map((name) => ({ resourceType: ConfigResourceTypes.TOPIC, resourceName: name })),
      }),
    );
    return wanted.map((name) => {
      const topic = metadata.topics.get(name);
      const resource = configs.find((entry) => entry.resourceName === name);
      return {
        name,
        partitions: topic?.partitionsCount ?? 0,
        replicationFactor: topic?.partitions[0]?.replicas.length ?? 0,
        config: Object.fromEntries((resource?.configs ?? []).map((entry) => [entry.name, entry.value ?? ''])),
      };
    });
  }

  async deleteTopics(names: string[]): Promise<void> {
    await wrapAdmin('delete topics', () => this.#admin.deleteTopics({ topics: names }));
  }

  async #partitionsOf(topics: string[]): Promise<(topic: string) => number[]> {
    const metadata = await wrapAdmin('describe topics', () =>
      this.#admin.metadata({ topics, forceUpdate: true }),
    );
    return (topic: string) =>
      Array.from({ length: metadata.topics.get(topic)?.partitionsCount ?? 0 }, (_, index) => index);
  }

  async #offsetRanges(
    topics: string[],
    partitionsOf: (topic: string) => number[],
  ): Promise<PartitionOffsetRange[]> {
    const listed = (timestamp: bigint) =>
      wrapAdmin('fetch topic offsets', () =>
        this.#admin.listOffsets({
          topics: topics.map((name) => ({
            name,
            partitions: partitionsOf(name).map((partitionIndex) => ({ partitionIndex, timestamp })),
          })),
        }),
      );
    // Kafka's ListOffsets sentinels: -1 asks for the log end, -2 for the log start.
    const [ends, starts] = await Promise.all([listed(-1n), listed(-2n)]);
    const ranges: PartitionOffsetRange[] = [];
    for (const topic of ends) {
      for (const end of topic.partitions) {
        const start =
          starts
            .find((entry) => entry.name === topic.name)
            ?.partitions.find((p) => p.partitionIndex === end.partitionIndex)?.offset ?? 0n;
        ranges.push({ topic: topic.name, partition: end.partitionIndex, start, end: end.offset });
      }
    }
    return ranges.sort((a, b) => partitionKey(a).localeCompare(partitionKey(b)));
  }

  async topicOffsets(topics: string[]): Promise<PartitionOffsetRange[]> {
    return this.#offsetRanges(topics, await this.#partitionsOf(topics));
  }

  async groupLag(groupId: string, topics: string[]): Promise<PartitionLag[]> {
    const partitionsOf = await this.#partitionsOf(topics);
    const [groupOffsets] = await wrapAdmin('fetch group offsets', () =>
      this.#admin.listConsumerGroupOffsets({
        groups: [{ groupId, topics: topics.map((name) => ({ name, partitionIndexes: partitionsOf(name) })) }],
      }),
    );
    const ranges = await this.#offsetRanges(topics, partitionsOf);
    return ranges.map(({ topic, partition, start, end }) => {
      const committed =
        groupOffsets?.topics
          .find((entry) => entry.name === topic)
          ?.partitions.find((p) => p.partitionIndex === partition)?.committedOffset ?? -1n;
      return lagOf({ topic, partition, start, end }, committed);
    });
  }

  async close(): Promise<void> {
    await this.#admin.close();
  }
}

async function wrapAdmin<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (cause) {
    throw new KafkaError(kafkaErrorCodes.admin, `${what} failed`, { cause });
  }
}

function toBuffer(value: string | Buffer): Buffer {
  return typeof value === 'string' ? Buffer.from(value) : value;
}
