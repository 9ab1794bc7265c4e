import { type BatchState, codecs, recordHeaders } from '@sluice/contracts';
import { type KafkaClient, type ProducerRecord, TableReader } from '@sluice/kafka';
import { retainedClosed } from './batch-reducer.ts';

interface Entry {
  state: BatchState;
  /** The results partition (and changelog partition: they are co-partitioned by batch id) of the batch. */
  partition: number;
}

/**
 * The aggregator's per-batch state: in memory, backed by the compacted changelog topic. Every instance follows
 * the whole changelog, and before it acts on a results partition it has just been given it waits until it has
 * read that partition's changelog to the end, so a rebalance or a restart continues from the last state the
 * previous owner wrote.
 */
export class BatchStore {
  readonly #entries = new Map<string, Entry>();
  readonly #restored = new Map<number, Promise<void>>();
  readonly #reader: TableReader;
  readonly #topic: string;

  constructor(options: {
    client: KafkaClient;
    topic: string;
    groupId: string;
    onInvalid(detail: string): void;
  }) {
    this.#topic = options.topic;
    this.#reader = new TableReader({
      client: options.client,
      topic: options.topic,
      groupId: options.groupId,
      apply: (record) => {
        const batchId = record.key?.toString();
        if (batchId === undefined) return;
        if (record.value === null) {
          this.#forget(batchId);
          return;
        }
        const decoded = codecs.batchState.decode(record);
        if (!decoded.ok) {
          options.onInvalid(`${decoded.reason}: ${decoded.detail}`);
          return;
        }
        const current = this.#entries.get(batchId);
        if (current === undefined || decoded.value.revision > current.state.revision) {
          this.#entries.set(batchId, { state: decoded.value, partition: record.partition });
        }
      },
    });
  }

  /** A tombstone read back: forget the batch unless it was written again since (a newer revision is open). */
  #forget(batchId: string): void {
    const current = this.#entries.get(batchId);
    if (current !== undefined && current.state.phase !== 'open') this.#entries.delete(batchId);
  }

  start(): Promise<void> {
    return this.#reader.start();
  }

  isJoined(): boolean {
    return this.#reader.isJoined();
  }

  /** Resolves once this partition's changelog has been read to its end (once per assignment). */
  restored(partition: number): Promise<void> {
    let restored = this.#restored.get(partition);
    if (restored === undefined) {
      restored = this.#reader.caughtUp([partition]);
      restored.catch(() => this.#restored.delete(partition));
      this.#restored.set(partition, restored);
    }
    return restored;
  }

  /** Partitions taken away: when they come back, their changelog is read to the end again first. */
  revoke(partitions: number[]): void {
    for (const partition of partitions) this.#restored.delete(partition);
  }

  partitionOf(batchId: string): number | undefined {
    return this.#entries.get(batchId)?.partition;
  }

  get(batchId: string): BatchState | undefined {
    return this.#entries.get(batchId)?.state;
  }

  /** Batch ids of the given partitions, for the clock sweep. */
  batchesOf(partitions: ReadonlySet<number>): string[] {
    const ids: string[] = [];
    for (const [batchId, entry] of this.#entries) if (partitions.has(entry.partition)) ids.push(batchId);
    return ids;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The changelog record of a new state (its revision bumped; a closed one as retainedClosed keeps it) or of
   * forgetting the batch. */
  changelogRecord(
    batchId: string,
    partition: number,
    state: BatchState | null,
  ): { record: ProducerRecord; next: BatchState | null } {
    if (state === null) {
      return { record: { topic: this.#topic, key: batchId, value: null, partition }, next: null };
    }
    const retained = state.phase === 'closed' ? retainedClosed(state) : state;
    const next = {
      ...retained,
      revision: (this.#entries.get(batchId)?.state.revision ?? state.revision) + 1,
    };
    const encoded = codecs.batchState.encode(next);
    return {
      record: {
        topic: this.#topic,
        key: batchId,
        value: encoded.value,
        partition,
        headers: {
          ...encoded.headers,
          [recordHeaders.batchId]: batchId,
          [recordHeaders.tenant]: next.tenant,
        },
      },
      next,
    };
  }

  /** Applies this instance's own write once Kafka acknowledged it. */
  commitLocal(batchId: string, partition: number, next: BatchState | null): void {
    if (next === null) this.#entries.delete(batchId);
    else this.#entries.set(batchId, { state: next, partition });
  }

  close(): Promise<void> {
    return this.#reader.close();
  }
}
