import { partitionKey } from './assignment.ts';
import { PartitionOffsets } from './offset-tracker.ts';
import type { ConsumedRecord, Consumer, RecordBatch, TopicPartition, TopicPartitionOffset } from './types.ts';

export interface RecordProcessorOptions {
  consumer: Consumer;
  /**
   * Processes one record. Handlers dead-letter what they cannot process, so a rejection means that something
   * they depend on failed (Kafka unreachable, say): it is reported through onError and the record is handled
   * again after a backoff, never counted as finished, so that no record is lost to an outage.
   */
  handle(record: ConsumedRecord, signal: AbortSignal): Promise<void>;
  /** Records processed at once across all partitions; above it, fetching pauses. */
  maxInFlight: number;
  /** Records with the same ordering key are processed one after another, in offset order. */
  orderingKey?(record: ConsumedRecord): string | undefined;
  /** How often finished offsets are committed while records flow. */
  commitIntervalMs?: number;
  onError?(error: unknown, record: ConsumedRecord, attempt: number): void;
  /** Upper bound of the backoff between handling attempts of a failing record. */
  maxRetryDelayMs?: number;
  onAssigned?(partitions: TopicPartition[]): void;
  onRevoked?(partitions: TopicPartition[]): void;
}

interface Tracked {
  offsets: PartitionOffsets;
  /** Bumped when the partition is revoked so that late completions of the old assignment are ignored. */
  epoch: number;
}

/**
 * Runs a consumer's records concurrently, Uber-uForwarder style: records of a partition are processed out of order
 * (except per ordering key), and only the contiguous prefix of finished records is committed. Fetching pauses while
 * maxInFlight records are running, so memory stays bounded and a slow record does not block its partition.
 */
export class RecordProcessor {
  readonly #options: RecordProcessorOptions;
  readonly #partitions = new Map<string, Tracked>();
  readonly #keyChains = new Map<string, Promise<void>>();
  readonly #running = new Set<Promise<void>>();
  readonly #abort = new AbortController();
  readonly #waiters = new Set<() => void>();
  #inFlight = 0;
  #stopping = false;
  #commitTimer: NodeJS.Timeout | undefined;
  #committing: Promise<void> = Promise.resolve();

  constructor(options: RecordProcessorOptions) {
    this.#options = options;
  }

  /** Joins the group and starts processing; resolves once partitions are assigned. */
  async start(): Promise<void> {
    const interval = this.#options.commitIntervalMs ?? 500;
    this.#commitTimer = setInterval(() => void this.commit().catch(() => {}), interval);
    this.#commitTimer.unref();
    await this.#options.consumer.start({
      onBatch: (batch) => this.#onBatch(batch),
      onAssigned: (partitions) => {
        for (const tp of partitions) this.#tracked(tp);
        this.#options.onAssigned?.(partitions);
      },
      onRevoked: async (partitions) => {
        const revoked = partitions.flatMap((tp) => this.#partitions.get(partitionKey(tp)) ?? []);
        // First, so that a batch of theirs waiting for room starts nothing more (see #onBatch).
        for (const tracked of revoked) tracked.epoch += 1;
        this.#wakeWaiters();
        await this.commit().catch(() => {});
        for (const tracked of revoked) tracked.offsets = new PartitionOffsets();
        this.#options.onRevoked?.(partitions);
      },
    });
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Stops fetching these partitions (records already handed out go on); for traffic shaping. */
  pause(partitions: TopicPartition[]): void {
    this.#options.consumer.pause(partitions);
  }

  resume(partitions: TopicPartition[]): void {
    this.#options.consumer.resume(partitions);
  }

  async #onBatch(batch: RecordBatch): Promise<void> {
    const tracked = this.#tracked(batch);
    const epoch = tracked.epoch;
    // Records not started are not tracked, so they are neither committed nor lost: the group re-reads them. That
    // holds when the partition is revoked while this batch waits for room too: its new owner reads them from the
    // committed offset, so starting them here would handle them twice.
    const over = () => this.#stopping || tracked.epoch !== epoch;
    for (const record of batch.records) {
      if (over()) return;
      // A client may read a partition it keeps again from the committed offset (@platformatic/kafka does after a
      // rebalance that adds partitions): records this assignment already started are not handled twice.
      if (tracked.offsets.handedOut(record.offset)) continue;
      while (this.#inFlight >= this.#options.maxInFlight && !over()) {
        // Returning from onBatch would let the client fetch more; waiting here is the backpressure.
        await new Promise<void>((resolve) => this.#waiters.add(resolve));
      }
      if (over()) return;
      tracked.offsets.start(record.offset);
      this.#inFlight += 1;
      const task = this.#run(record, tracked, tracked.epoch);
      this.#running.add(task);
      void task.finally(() => this.#running.delete(task));
    }
  }

  async #run(record: ConsumedRecord, tracked: Tracked, epoch: number): Promise<void> {
    const key = this.#options.orderingKey?.(record);
    const chainKey = key === undefined ? undefined : `${record.topic}:${record.partition}:${key}`;
    const previous = chainKey === undefined ? undefined : this.#keyChains.get(chainKey);
    const work = (async () => {
      if (previous !== undefined) await previous;
      for (let attempt = 1; ; attempt += 1) {
        if (this.#abort.signal.aborted) return false;
        try {
          await this.#options.handle(record, this.#abort.signal);
          return !this.#abort.signal.aborted;
        } catch (error) {
          if (this.#abort.signal.aborted) return false;
          this.#options.onError?.(error, record, attempt);
          const ceiling = Math.min(this.#options.maxRetryDelayMs ?? 30_000, 100 * 2 ** (attempt - 1));
          await sleep(ceiling / 2 + Math.random() * (ceiling / 2), this.#abort.signal);
        }
      }
    })();
    const settled = work.then(() => undefined);
    if (chainKey !== undefined) {
      this.#keyChains.set(chainKey, settled);
      void settled.then(() => {
        if (this.#keyChains.get(chainKey) === settled) this.#keyChains.delete(chainKey);
      });
    }
    const finished = await work;
    this.#inFlight -= 1;
    // An aborted record stays unfinished, so its offset is never committed and it is processed again later.
    if (finished && tracked.epoch === epoch) tracked.offsets.finish(record.offset);
    this.#wakeWaiters();
  }

  #wakeWaiters(): void {
    for (const wake of this.#waiters) wake();
    this.#waiters.clear();
  }

  #tracked(tp: TopicPartition): Tracked {
    const key = partitionKey(tp);
    let tracked = this.#partitions.get(key);
    if (tracked === undefined) {
      tracked = { offsets: new PartitionOffsets(), epoch: 0 };
      this.#partitions.set(key, tracked);
    }
    return tracked;
  }

  /** Commits the finished prefix of every partition; commits are serialised so they never go backwards. */
  commit(): Promise<void> {
    this.#committing = this.#committing.catch(() => {}).then(() => this.#commitNow());
    return this.#committing;
  }

  async #commitNow(): Promise<void> {
    const offsets: TopicPartitionOffset[] = [];
    const assigned = new Set(this.#options.consumer.assignment().map(partitionKey));
    for (const [key, tracked] of this.#partitions) {
      if (!assigned.has(key)) continue;
      const offset = tracked.offsets.committable();
      if (offset === undefined) continue;
      const [topic, partition] = splitKey(key);
      offsets.push({ topic, partition, offset });
    }
    if (offsets.length === 0) return;
    await this.#options.consumer.commit(offsets);
    for (const { topic, partition, offset } of offsets) {
      this.#partitions.get(partitionKey({ topic, partition }))?.offsets.markCommitted(offset);
    }
  }

  /**
   * Graceful stop: no new records start, running ones get until `drainTimeoutMs` to finish, then the rest are
   * aborted (left uncommitted, so they run again after a restart); the finished prefix is committed and the
   * consumer leaves its group.
   */
  async stop(drainTimeoutMs: number): Promise<{ abandoned: number }> {
    this.#stopping = true;
    if (this.#commitTimer !== undefined) clearInterval(this.#commitTimer);
    for (const wake of this.#waiters) wake();
    const drained = Promise.allSettled([...this.#running]).then(() => true);
    const inTime = await Promise.race([drained, sleep(drainTimeoutMs).then(() => false)]);
    const abandoned = inTime ? 0 : this.#inFlight;
    this.#abort.abort();
    for (const wake of this.#waiters) wake();
    await Promise.allSettled([...this.#running]);
    await this.commit();
    await this.#options.consumer.close();
    return { abandoned };
  }
}

function splitKey(key: string): [string, number] {
  const at = key.lastIndexOf(':');
  return [key.slice(0, at), Number(key.slice(at + 1))];
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    timer.unref();
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
