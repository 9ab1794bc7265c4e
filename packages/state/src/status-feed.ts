import { setTimeout as delay } from 'node:timers/promises';
import { codecs, type StatusMessage } from '@sluice/contracts';
import {
  type Admin,
  type ConsumedRecord,
  type Consumer,
  type KafkaClient,
  RecordProcessor,
  TableReader,
} from '@sluice/kafka';
import type { StateStore } from './types.ts';

export interface StatusFeedOptions {
  client: KafkaClient;
  /** The status topic's name (prefix applied). */
  topic: string;
  /** This instance's own group (see tableReaderGroupName); in `shared` mode the one group of all replicas. */
  groupId: string;
  store: StateStore;
  /**
   * `table` (default): a group of this instance alone that reads the whole topic on every start, for a store in
   * this process's memory. `shared`: one committed group for every replica, for a store they share (Redis):
   * each status is applied once, by the replica that owns its partition, and a restart resumes from the
   * group's committed offsets instead of reading everything again.
   */
  mode?: 'table' | 'shared';
  /** Statuses this feed has just written to the store (for a metric: with a shared group, replicas' counts add up). */
  onApplied?(count: number): void;
  /** A status the store could not take (unreachable); it is applied again after a backoff. */
  onError?(error: unknown): void;
  /** A record the feed cannot read; the status topic is internal, so this is a bug worth a log line. */
  onInvalid?(detail: string): void;
}

/**
 * Follows the compacted status topic into a store. The topic is the source of truth: a store fed from the
 * beginning holds every status still retained, whichever replica or service wrote it. Replicas sharing a store
 * (Redis) feed it together through one committed group (`mode: 'shared'`) instead of each reading everything.
 */
export class StatusFeed {
  readonly #reader: TableReader | SharedGroupReader;
  readonly #options: StatusFeedOptions;
  #pending: Promise<void> = Promise.resolve();

  constructor(options: StatusFeedOptions) {
    this.#options = options;
    const decode = (record: ConsumedRecord): StatusMessage | undefined => {
      if (record.value === null) return undefined;
      const decoded = codecs.status.decode(record);
      if (decoded.ok) return decoded.value;
      options.onInvalid?.(`${decoded.reason}: ${decoded.detail}`);
      return undefined;
    };
    this.#reader =
      options.mode === 'shared'
        ? new SharedGroupReader(options, async (record) => {
            const status = decode(record);
            if (status === undefined) return;
            await options.store.applyStatuses([status]);
            options.onApplied?.(1);
          })
        : new TableReader({
            client: options.client,
            topic: options.topic,
            groupId: options.groupId,
            apply: (record) => {
              const status = decode(record);
              if (status !== undefined) this.#queue(status);
            },
          });
  }

  #batch: StatusMessage[] = [];

  #queue(status: StatusMessage): void {
    this.#batch.push(status);
    if (this.#batch.length > 1) return;
    // Statuses of one fetch are applied together; the store's writes stay in the order they were read.
    this.#pending = this.#pending.then(async () => {
      const batch = this.#batch;
      this.#batch = [];
      await this.#applyUntilDone(batch);
    });
  }

  /**
   * A store that cannot take statuses now (Redis unreachable) gets them again after a backoff, in order, until it
   * does: the chain of applies never breaks, so nothing read is skipped. Reading goes on meanwhile (into memory).
   */
  async #applyUntilDone(batch: StatusMessage[]): Promise<void> {
    let delayMs = 100;
    for (;;) {
      try {
        await this.#options.store.applyStatuses(batch);
        this.#options.onApplied?.(batch.length);
        return;
      } catch (error) {
        if (this.#closed) return;
        this.#options.onError?.(error);
        await delay(delayMs);
        delayMs = Math.min(delayMs * 2, 5_000);
      }
    }
  }

  #closed = false;

  /** Reads until caught up with what the topic holds now. */
  async start(): Promise<void> {
    await this.#reader.start();
    await this.#pending;
  }

  /** Waits until everything written to the status topic before the call is in the store. */
  async caughtUp(signal?: AbortSignal): Promise<void> {
    await this.#reader.caughtUp(undefined, signal);
    await this.#pending;
  }

  isJoined(): boolean {
    return this.#reader.isJoined();
  }

  lag(): Promise<bigint> {
    return this.#reader.lag();
  }

  async close(): Promise<void> {
    await this.#reader.close();
    this.#closed = true;
    await this.#pending;
  }
}

/**
 * The status topic through one committed group shared by every replica: records are applied concurrently (one
 * request's records in offset order, so that the first of two terminal statuses stays), a failed apply is
 * retried, and only applied offsets are committed.
 */
class SharedGroupReader {
  readonly #options: StatusFeedOptions;
  readonly #consumer: Consumer;
  readonly #processor: RecordProcessor;
  readonly #admin: Admin;

  constructor(options: StatusFeedOptions, apply: (record: ConsumedRecord) => Promise<void>) {
    this.#options = options;
    this.#consumer = options.client.consumer({
      groupId: options.groupId,
      topics: [options.topic],
      fromBeginning: true,
      // Applying a status twice changes nothing and is quick, so the one-round eager protocol costs little here;
      // @platformatic/kafka's cooperative one kept this group rebalancing every heartbeat for ~50 s after a member
      // joined, committing nothing meanwhile (redis-feed.test.ts).
      rebalancing: 'eager',
    });
    this.#processor = new RecordProcessor({
      consumer: this.#consumer,
      handle: apply,
      maxInFlight: 256,
      orderingKey: (record) => record.key?.toString('utf8'),
      commitIntervalMs: 100,
      maxRetryDelayMs: 5_000,
      onError: (error) => options.onError?.(error),
    });
    this.#admin = options.client.admin();
  }

  async start(): Promise<void> {
    await this.#processor.start();
    await this.caughtUp();
  }

  /** Polls the group's committed offsets (any replica's) until they reach the log ends read at the call. */
  async caughtUp(_partitions?: number[], signal?: AbortSignal): Promise<void> {
    const ends = await this.#admin.topicOffsets([this.#options.topic]);
    for (;;) {
      const committed = new Map((await this.#groupLag()).map((lag) => [lag.partition, lag.committed]));
      if (
        ends.every(
          (range) => range.end <= range.start || (committed.get(range.partition) ?? -1n) >= range.end,
        )
      ) {
        return;
      }
      signal?.throwIfAborted();
      await delay(50, undefined, signal === undefined ? {} : { signal });
    }
  }

  isJoined(): boolean {
    return this.#consumer.isJoined();
  }

  async lag(): Promise<bigint> {
    return (await this.#groupLag()).reduce((total, partition) => total + partition.lag, 0n);
  }

  #groupLag() {
    return this.#admin.groupLag(this.#options.groupId, [this.#options.topic]);
  }

  async close(): Promise<void> {
    await this.#processor.stop(5_000);
    await this.#admin.close();
  }
}
