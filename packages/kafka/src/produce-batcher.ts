import { KafkaError, kafkaErrorCodes } from './errors.ts';
import type { ProducerRecord } from './types.ts';

interface PendingSend {
  records: ProducerRecord[];
  resolve(): void;
  reject(error: Error): void;
}

export interface ProduceBatcherOptions {
  lingerMs: number;
  maxBatchRecords: number;
  /** Sends one produce request's worth of records; must resolve only after the broker acknowledged them. */
  sendBatch(records: ProducerRecord[]): Promise<void>;
}

/**
 * Coalesces records from concurrent callers into shared produce requests, because neither client library batches
 * across `send()` calls and an HTTP ingress produces one small record per request. One request is in flight at a
 * time: while it is, new records queue and leave together as soon as it returns. This keeps per-partition order
 * for an idempotent producer and turns load into bigger batches instead of more requests.
 */
export class ProduceBatcher {
  readonly #options: ProduceBatcherOptions;
  #queue: PendingSend[] = [];
  #queuedRecords = 0;
  #inFlight: Promise<void> | undefined;
  #lingerTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: ProduceBatcherOptions) {
    this.#options = options;
  }

  send(records: ProducerRecord[]): Promise<void> {
    if (this.#closed) {
      return Promise.reject(new KafkaError(kafkaErrorCodes.closed, 'producer is closed'));
    }
    if (records.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#queue.push({ records, resolve, reject });
      this.#queuedRecords += records.length;
      this.#schedule();
    });
  }

  /** Stops taking records and waits until everything queued has been sent. */
  async close(): Promise<void> {
    this.#closed = true;
    while (this.#inFlight !== undefined || this.#queue.length > 0) {
      if (this.#inFlight === undefined) this.#flush();
      await this.#inFlight;
    }
  }

  #schedule(): void {
    if (this.#inFlight !== undefined) return;
    if (this.#queuedRecords >= this.#options.maxBatchRecords || this.#options.lingerMs <= 0) {
      this.#flush();
      return;
    }
    this.#lingerTimer ??= setTimeout(() => this.#flush(), this.#options.lingerMs);
  }

  #flush(): void {
    if (this.#lingerTimer !== undefined) {
      clearTimeout(this.#lingerTimer);
      this.#lingerTimer = undefined;
    }
    if (this.#inFlight !== undefined || this.#queue.length === 0) return;
    const batch = this.#takeBatch();
    this.#inFlight = this.#sendBatch(batch).finally(() => {
      this.#inFlight = undefined;
      if (this.#queue.length > 0) this.#flush();
    });
  }

  /** Takes whole callers' sends up to maxBatchRecords; a single larger send still goes as one request. */
  #takeBatch(): PendingSend[] {
    const batch: PendingSend[] = [];
    let count = 0;
    while (this.#queue.length > 0) {
      const next = this.#queue[0] as PendingSend;
      if (batch.length > 0 && count + next.records.length > this.#options.maxBatchRecords) break;
      this.#queue.shift();
      batch.push(next);
      count += next.records.length;
    }
    this.#queuedRecords -= count;
    return batch;
  }

  async #sendBatch(batch: PendingSend[]): Promise<void> {
    const records = batch.flatMap((pending) => pending.records);
    try {
      await this.#options.sendBatch(records);
      for (const pending of batch) pending.resolve();
    } catch (error) {
      const failure =
        error instanceof KafkaError
          ? error
          : new KafkaError(kafkaErrorCodes.produce, 'produce request failed', { cause: error });
      for (const pending of batch) pending.reject(failure);
    }
  }
}
