import { codecs, type StatusMessage } from '@sluice/contracts';
import { type KafkaClient, TableReader } from '@sluice/kafka';
import type { StateStore } from './types.ts';

export interface StatusFeedOptions {
  client: KafkaClient;
  /** The status topic's name (prefix applied). */
  topic: string;
  /** This instance's own group (see tableReaderGroupName). */
  groupId: string;
  store: StateStore;
  /** A record the feed cannot read; the status topic is internal, so this is a bug worth a log line. */
  onInvalid?(detail: string): void;
}

/**
 * Follows the compacted status topic into a store. The topic is the source of truth: a store fed from the
 * beginning holds every status still retained, whichever replica or service wrote it.
 */
export class StatusFeed {
  readonly #reader: TableReader;
  readonly #options: StatusFeedOptions;
  #pending: Promise<void> = Promise.resolve();

  constructor(options: StatusFeedOptions) {
    this.#options = options;
    this.#reader = new TableReader({
      client: options.client,
      topic: options.topic,
      groupId: options.groupId,
      apply: (record) => {
        if (record.value === null) return;
        const decoded = codecs.status.decode(record);
        if (!decoded.ok) {
          options.onInvalid?.(`${decoded.reason}: ${decoded.detail}`);
          return;
        }
        this.#queue(decoded.value);
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
      await this.#options.store.applyStatuses(batch);
    });
  }

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
    await this.#pending;
  }
}
