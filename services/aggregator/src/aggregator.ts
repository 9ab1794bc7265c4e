import {
  type BatchCompletion,
  type BatchState,
  codecs,
  type ProgressMessage,
  type RequestCompletion,
  recordHeaders,
  type StatusMessage,
} from '@sluice/contracts';
import type { ConsumedRecord, Producer, ProducerRecord } from '@sluice/kafka';
import { deadLetterRecord } from '@sluice/runtime';
import { applyClock, applyProgress, type ReducerSettings, type Transition } from './batch-reducer.ts';
import type { BatchStore } from './batch-store.ts';

export interface AggregatorTopics {
  status: string;
  completions: string;
  deadLetters: string;
}

export interface AggregatorDeps {
  producer: Producer;
  store: BatchStore;
  topics: AggregatorTopics;
  settings: ReducerSettings;
  now?: () => number;
}

/**
 * Consumes the results topic: restores a partition's batch state before its first record, applies each record
 * through the reducer under a per-batch lock (the clock sweep takes the same lock), and writes the new state,
 * the statuses and the completions in one produce call that Kafka acknowledges before the record is finished.
 */
export class Aggregator {
  readonly #deps: AggregatorDeps;
  readonly #now: () => number;
  readonly #locks = new Map<string, Promise<void>>();
  readonly #owned = new Set<number>();

  constructor(deps: AggregatorDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
  }

  handle = async (record: ConsumedRecord): Promise<void> => {
    const decoded = codecs.progress.decode(record);
    if (!decoded.ok) {
      await this.#deps.producer.send([
        deadLetterRecord({
          topic: this.#deps.topics.deadLetters,
          service: 'aggregator',
          record,
          reason: decoded.reason,
          detail: decoded.detail,
        }),
      ]);
      return;
    }
    await this.#deps.store.restored(record.partition);
    const message: ProgressMessage = decoded.value;
    await this.#locked(message.batchId, async () => {
      const current = this.#deps.store.get(message.batchId);
      const transition = applyProgress(current, message, record.offset, this.#now());
      await this.#write(message.batchId, record.partition, transition);
    });
  };

  assigned(partitions: number[]): void {
    for (const partition of partitions) this.#owned.add(partition);
  }

  revoked(partitions: number[]): void {
    for (const partition of partitions) this.#owned.delete(partition);
    this.#deps.store.revoke(partitions);
  }

  /** Expires overdue batches and forgets old closed ones, for the partitions this instance owns. */
  async sweep(): Promise<number> {
    let written = 0;
    const owned = new Set(this.#owned);
    for (const partition of owned) await this.#deps.store.restored(partition);
    for (const batchId of this.#deps.store.batchesOf(owned)) {
      await this.#locked(batchId, async () => {
        const state: BatchState | undefined = this.#deps.store.get(batchId);
        if (state === undefined) return;
        const transition = applyClock(state, this.#now(), this.#deps.settings);
        if (transition.state === undefined) return;
        const partition = this.#deps.store.partitionOf(batchId);
        if (partition === undefined || !owned.has(partition)) return;
        written += 1;
        await this.#write(batchId, partition, transition);
      });
    }
    return written;
  }

  async #write(batchId: string, partition: number, transition: Transition): Promise<void> {
    if (
      transition.state === undefined &&
      transition.statuses.length === 0 &&
      transition.completions.length === 0
    )
      return;
    const records: ProducerRecord[] = [];
    let next: BatchState | null | undefined;
    if (transition.state !== undefined) {
      const changelog = this.#deps.store.changelogRecord(batchId, partition, transition.state);
      records.push(changelog.record);
      next = changelog.next;
    }
    for (const status of transition.statuses) records.push(this.#statusRecord(status));
    for (const completion of transition.completions) records.push(this.#completionRecord(completion));
    await this.#deps.producer.send(records);
    if (next !== undefined) this.#deps.store.commitLocal(batchId, partition, next);
  }

  #statusRecord(status: StatusMessage): ProducerRecord {
    const encoded = codecs.status.encode(status);
    return {
      topic: this.#deps.topics.status,
      key: status.id,
      value: encoded.value,
      headers: {
        ...encoded.headers,
        [recordHeaders.requestId]: status.id,
        [recordHeaders.batchId]: status.batchId,
        [recordHeaders.tenant]: status.tenant,
      },
    };
  }

  #completionRecord(completion: RequestCompletion | BatchCompletion): ProducerRecord {
    const encoded = codecs.completion.encode(completion);
    return {
      topic: this.#deps.topics.completions,
      key: completion.batchId,
      value: encoded.value,
      headers: {
        ...encoded.headers,
        [recordHeaders.batchId]: completion.batchId,
        [recordHeaders.tenant]: completion.tenant,
        [recordHeaders.kind]: completion.kind,
        ...(completion.kind === 'request' ? { [recordHeaders.requestId]: completion.id } : {}),
      },
    };
  }

  async #locked(batchId: string, work: () => Promise<void>): Promise<void> {
    const previous = this.#locks.get(batchId) ?? Promise.resolve();
    const run = previous.then(work, work);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.#locks.set(batchId, settled);
    try {
      await run;
    } finally {
      if (this.#locks.get(batchId) === settled) this.#locks.delete(batchId);
    }
  }
}
