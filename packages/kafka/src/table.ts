import { KafkaError, kafkaErrorCodes } from './errors.ts';
import type { Admin, ConsumedRecord, Consumer, KafkaClient } from './types.ts';

export interface TableReaderOptions {
  client: KafkaClient;
  topic: string;
  /** A group of this instance alone; it never commits, so every start reads the topic from the beginning. */
  groupId: string;
  /** Applies one record (a null value is a tombstone). Called in offset order per partition. */
  apply(record: ConsumedRecord): void;
  maxBatchRecords?: number;
}

/**
 * Reads a compacted topic from the beginning into the caller's memory and keeps following it: a table. Any
 * instance can then answer for any key, and a restart rebuilds the table from Kafka, the source of truth.
 * {@link caughtUp} waits until everything written before the call has been applied, which is what an owner of a
 * partition needs before it acts on that partition's state.
 */
export class TableReader {
  readonly #options: TableReaderOptions;
  readonly #consumer: Consumer;
  readonly #admin: Admin;
  /** Next offset to apply, per partition. */
  readonly #positions = new Map<number, bigint>();
  readonly #waiters = new Set<() => void>();
  #started = false;
  #closed = false;

  constructor(options: TableReaderOptions) {
    this.#options = options;
    this.#consumer = options.client.consumer({
      groupId: options.groupId,
      topics: [options.topic],
      fromBeginning: true,
      partitionConcurrency: 8,
      maxBatchRecords: options.maxBatchRecords ?? 2_000,
    });
    this.#admin = options.client.admin();
  }

  /** Joins and reads until caught up with what the topic held at the call. */
  async start(): Promise<void> {
    if (!this.#started) {
      this.#started = true;
      await this.#consumer.start({
        onBatch: async (batch) => {
          for (const record of batch.records) this.#options.apply(record);
          const last = batch.records.at(-1);
          if (last !== undefined) this.#positions.set(batch.partition, last.offset + 1n);
          for (const wake of [...this.#waiters]) wake();
        },
      });
    }
    await this.caughtUp();
  }

  /** True while the reader is a member of its group (it follows new records). */
  isJoined(): boolean {
    return this.#consumer.isJoined();
  }

  /**
   * Resolves once every record written to the given partitions (all when omitted) before this call has been
   * applied. The log end is read from the broker, so records of other writers count too.
   */
  async caughtUp(partitions?: number[], signal?: AbortSignal): Promise<void> {
    const ranges = (await this.#admin.topicOffsets([this.#options.topic])).filter(
      (range) => partitions === undefined || partitions.includes(range.partition),
    );
    const done = () =>
      ranges.every(
        (range) => range.end <= range.start || (this.#positions.get(range.partition) ?? -1n) >= range.end,
      );
    while (!done()) {
      signal?.throwIfAborted();
      if (this.#closed) throw new KafkaError(kafkaErrorCodes.closed, 'table reader is closed');
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.#waiters.delete(wake);
          signal?.removeEventListener('abort', wake);
          resolve();
        };
        this.#waiters.add(wake);
        signal?.addEventListener('abort', wake, { once: true });
      });
    }
  }

  /** How many offsets each partition still has to apply; for metrics and readiness. */
  async lag(): Promise<bigint> {
    const ranges = await this.#admin.topicOffsets([this.#options.topic]);
    let total = 0n;
    for (const range of ranges) {
      const position = this.#positions.get(range.partition) ?? range.start;
      if (range.end > position) total += range.end - position;
    }
    return total;
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const wake of [...this.#waiters]) wake();
    await this.#consumer.close();
    await this.#admin.close();
  }
}
