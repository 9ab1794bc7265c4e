import { type BatchState, codecs, recordHeaders } from '@sluice/contracts';
import { type KafkaClient, type ProducerRecord, TableReader } from '@sluice/kafka';
import { retainedClosed } from './batch-reducer.ts';
import { DueIndex, dueIndexNeedsRebuild } from './due-index.ts';

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
  #due = new DueIndex();
  readonly #clockDueAt: (state: BatchState) => number | undefined;
  readonly #restored = new Map<number, Promise<void>>();
  readonly #reader: TableReader;
  readonly #topic: string;

  constructor(options: {
    client: KafkaClient;
    topic: string;
    groupId: string;
    /** When the clock next acts on a state (the reducer's clockDueAt with the aggregator's settings). */
    clockDueAt(state: BatchState): number | undefined;
    onInvalid(detail: string): void;
  }) {
    this.#topic = options.topic;
    this.#clockDueAt = options.clockDueAt;
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
          this.#put(batchId, { state: decoded.value, partition: record.partition });
        }
      },
    });
  }

  #put(batchId: string, entry: Entry): void {
    const previous = this.#entries.get(batchId);
    this.#entries.set(batchId, entry);
    const dueAt = this.#clockDueAt(entry.state);
    if (dueAt !== undefined && (previous === undefined || this.#clockDueAt(previous.state) !== dueAt)) {
      this.#due.add(batchId, dueAt);
      this.#rebuildDueIndexIfStale();
    }
  }

  #delete(batchId: string): void {
    this.#entries.delete(batchId);
    this.#rebuildDueIndexIfStale();
  }

  /** See dueIndexNeedsRebuild: the index rebuilt from the batches held, each at its current due time. */
  #rebuildDueIndexIfStale(): void {
    if (!dueIndexNeedsRebuild(this.#due.size, this.#entries.size)) return;
    const live: { batchId: string; dueAt: number }[] = [];
    for (const [batchId, entry] of this.#entries) {
      const dueAt = this.#clockDueAt(entry.state);
      if (dueAt !== undefined) live.push({ batchId, dueAt });
    }
    // Batches taken out by takeDue and not given back yet are indexed again here; reindex then adds them a second
    // time, which takeDue tolerates (it takes a batch once, and skips entries that no longer match its state).
    this.#due = new DueIndex(live);
  }

  /** A tombstone read back: forget the batch unless it was written again since (a newer revision is open). */
  #forget(batchId: string): void {
    const current = this.#entries.get(batchId);
    if (current !== undefined && current.state.phase !== 'open') this.#delete(batchId);
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

  /**
   * Batches of the given partitions whose clock is due at `now`, each once, taken out of the index: the sweep
   * gives each back with {@link reindex} once it has dealt with it (or failed to). Due batches of other partitions
   * stay indexed for when this instance owns them (their owner forgets or expires them meanwhile).
   */
  takeDue(partitions: ReadonlySet<number>, now: number): string[] {
    const taken = new Set<string>();
    const others: { batchId: string; dueAt: number }[] = [];
    for (const due of this.#due.takeDue(now)) {
      const entry = this.#entries.get(due.batchId);
      // Forgotten since, or changed to a state due at another time (indexed again then).
      if (entry === undefined || this.#clockDueAt(entry.state) !== due.dueAt) continue;
      if (partitions.has(entry.partition)) taken.add(due.batchId);
      else others.push(due);
    }
    for (const due of others) this.#due.add(due.batchId, due.dueAt);
    return [...taken];
  }

  /** Indexes a batch taken by {@link takeDue} again by its current state (nothing if it is forgotten). */
  reindex(batchId: string): void {
    const entry = this.#entries.get(batchId);
    const dueAt = entry === undefined ? undefined : this.#clockDueAt(entry.state);
    if (dueAt !== undefined) this.#due.add(batchId, dueAt);
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Entries in the due index, stale ones included (bounded by dueIndexNeedsRebuild). */
  get indexedSize(): number {
    return this.#due.size;
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
    if (next === null) this.#delete(batchId);
    else this.#put(batchId, { state: next, partition });
  }

  close(): Promise<void> {
    return this.#reader.close();
  }
}
