import { setImmediate } from 'node:timers/promises';
import { ROOT_CONTEXT, type Tracer, trace } from '@opentelemetry/api';
import {
  type BatchCompletion,
  type BatchState,
  type CarriedHeaders,
  codecs,
  completionRecord,
  type ProgressMessage,
  type RequestCompletion,
  recordHeaders,
  type StatusMessage,
  statusRecord,
} from '@sluice/contracts';
import type { ConsumedRecord, Producer, ProducerRecord } from '@sluice/kafka';
import { deadLetterRecord } from '@sluice/runtime';
import { contextFrom, inSpan, linkFrom, traceHeaders } from '@sluice/telemetry';
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
  tracer: Tracer;
  metrics?: { terminal(status: StatusMessage): void; duplicateResult(route: string): void } | undefined;
  now?: () => number;
  /** A write to Kafka failed; the group is written again after a backoff. */
  onWriteError?(error: unknown, attempt: number): void;
}

interface Pending {
  message: ProgressMessage;
  /** Trace context of the record, carried onto what it causes. */
  carried: CarriedHeaders;
  offset: bigint;
  partition: number;
  signal: AbortSignal;
  resolve(): void;
  reject(error: unknown): void;
}

/**
 * Consumes the results topic: restores a partition's batch state before its first record, applies records
 * through the reducer under a per-batch lock (the clock sweep takes the same lock), and writes the statuses and
 * the completions, then the new state, all acknowledged by Kafka before the records count as finished. Records of
 * one batch that arrive while its previous write is in flight are folded together and written once (group
 * commit): a batch of 1000 costs a few dozen state writes instead of a thousand.
 */
export class Aggregator {
  readonly #deps: AggregatorDeps;
  readonly #now: () => number;
  readonly #locks = new Map<string, Promise<void>>();
  readonly #owned = new Set<number>();
  readonly #queued = new Map<string, Pending[]>();

  constructor(deps: AggregatorDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
  }

  handle = async (record: ConsumedRecord, signal: AbortSignal): Promise<void> => {
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
    await new Promise<void>((resolve, reject) => {
      const queue = this.#queued.get(message.batchId);
      const pending: Pending = {
        message,
        // The record's consumer span: what it causes carries this trace.
        carried: traceHeaders(),
        offset: record.offset,
        partition: record.partition,
        signal,
        resolve,
        reject,
      };
      if (queue !== undefined) {
        queue.push(pending);
        return;
      }
      this.#queued.set(message.batchId, [pending]);
      void this.#flush(message.batchId);
    });
  };

  /** Folds and writes what is queued for a batch, again and again until nothing more arrived meanwhile. */
  async #flush(batchId: string): Promise<void> {
    for (;;) {
      const queue = this.#queued.get(batchId) ?? [];
      if (queue.length === 0) {
        this.#queued.delete(batchId);
        return;
      }
      const taken = queue.splice(0);
      for (let attempt = 1; ; attempt += 1) {
        try {
          await this.#fold(batchId, taken);
          for (const item of taken) item.resolve();
          break;
        } catch (error) {
          // Order matters (a record at or below a batch's applied offset counts as a replay), so a failed group
          // is tried again here, in order, rather than handed back to be retried record by record.
          const aborted = taken.find((item) => item.signal.aborted);
          if (aborted !== undefined) {
            for (const item of taken) item.reject(aborted.signal.reason ?? error);
            this.#queued.delete(batchId);
            return;
          }
          this.#deps.onWriteError?.(error, attempt);
          await delay(Math.min(30_000, 100 * 2 ** attempt), taken[0]?.signal);
        }
      }
    }
  }

  /** Applies a group of records in order to the batch's state and writes the outcome in one produce call. */
  async #fold(batchId: string, taken: Pending[]): Promise<void> {
    await this.#locked(batchId, async () => {
      let state = this.#deps.store.get(batchId);
      let changed: BatchState | null | undefined;
      const outputs: Output[] = [];
      for (const item of taken) {
        const transition = applyProgress(
          state,
          item.message,
          item.offset,
          this.#now(),
          item.carried[recordHeaders.traceparent],
        );
        if (transition.state !== undefined) {
          changed = transition.state;
          state = changed ?? undefined;
        }
        outputs.push(...this.#outputsOf(transition, item.carried, state));
      }
      await this.#write(batchId, (taken[0] as Pending).partition, changed, outputs);
    });
  }

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
    const due = this.#deps.store.takeDue(owned, this.#now());
    let index = 0;
    try {
      for (; index < due.length; index += 1) {
        // Many due at once (a burst of batches closed a retention window ago): let I/O in between.
        if (index > 0 && index % 256 === 0) await setImmediate();
        const batchId = due[index] as string;
        if (await this.#sweepOne(batchId, owned)) written += 1;
        // Changed meanwhile, or no longer this instance's: indexed by its state now, so it is not forgotten.
        else this.#deps.store.reindex(batchId);
      }
    } finally {
      // A write failed: that batch and those after it are due again at the next sweep.
      for (const batchId of due.slice(index)) this.#deps.store.reindex(batchId);
    }
    return written;
  }

  /** Applies the clock to one due batch under its lock; whether that wrote anything. */
  async #sweepOne(batchId: string, owned: ReadonlySet<number>): Promise<boolean> {
    let written = false;
    await this.#locked(batchId, async () => {
      const state: BatchState | undefined = this.#deps.store.get(batchId);
      if (state === undefined) return;
      const transition = applyClock(state, this.#now(), this.#deps.settings);
      if (transition.state === undefined) return;
      const partition = this.#deps.store.partitionOf(batchId);
      if (partition === undefined || !owned.has(partition)) return;
      written = true;
      // The deadline's work joins the batch's trace (from its announcement).
      const parent = contextFrom(
        state.traceparent === undefined ? {} : { traceparent: state.traceparent },
        ROOT_CONTEXT,
      );
      await inSpan(
        this.#deps.tracer,
        'expire batch',
        { parent, attributes: { 'sluice.batch_id': batchId } },
        async () => {
          const outputs = this.#outputsOf(transition, traceHeaders(), transition.state ?? undefined);
          await this.#write(batchId, partition, transition.state, outputs);
        },
      );
    });
    return written;
  }

  /**
   * What a transition writes, each with the trace context it carries. A batch's completion gets a span of its own
   * that links to the traces of every request of the batch.
   */
  #outputsOf(transition: Transition, carried: CarriedHeaders, state: BatchState | undefined): Output[] {
    const outputs: Output[] = transition.statuses.map((message) => ({
      kind: 'status' as const,
      message,
      carried,
    }));
    for (const status of transition.statuses) this.#deps.metrics?.terminal(status);
    if (transition.duplicateResult !== undefined)
      this.#deps.metrics?.duplicateResult(transition.duplicateResult.route);
    for (const message of transition.completions) {
      if (message.kind === 'request') {
        outputs.push({ kind: 'completion', message, carried });
        continue;
      }
      const links = Object.values(state?.items ?? {}).flatMap((item) => {
        const link = item.traceparent === undefined ? undefined : linkFrom({ traceparent: item.traceparent });
        return link === undefined ? [] : [link];
      });
      const span = this.#deps.tracer.startSpan(
        'complete batch',
        {
          links,
          attributes: { 'sluice.batch_id': message.batchId, 'sluice.batch.size': message.items.length },
        },
        contextFrom(carried, ROOT_CONTEXT),
      );
      outputs.push({ kind: 'completion', message, carried: traceHeaders(trace.setSpan(ROOT_CONTEXT, span)) });
      span.end();
    }
    return outputs;
  }

  async #write(
    batchId: string,
    partition: number,
    state: BatchState | null | undefined,
    outputs: Output[],
  ): Promise<void> {
    if (state === undefined && outputs.length === 0) return;
    const records: ProducerRecord[] = outputs.map((output) =>
      output.kind === 'status'
        ? statusRecord(this.#deps.topics.status, output.message, output.carried)
        : completionRecord(this.#deps.topics.completions, output.message, output.carried),
    );
    // The statuses and completions first, the new state only once Kafka has them. They live on other partitions
    // (other brokers) than the state, so one produce can fail half-way, and a state that records a result as applied
    // makes every replay of that result a no-op: a state written without its outputs would lose them for good. In
    // this order a failure or a crash in between writes the outputs again instead (at least once).
    if (records.length > 0) await this.#deps.producer.send(records);
    if (state === undefined) return;
    const changelog = this.#deps.store.changelogRecord(batchId, partition, state);
    await this.#deps.producer.send([changelog.record]);
    this.#deps.store.commitLocal(batchId, partition, changelog.next);
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

function delay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

type Output =
  | { kind: 'status'; message: StatusMessage; carried: CarriedHeaders }
  | { kind: 'completion'; message: RequestCompletion | BatchCompletion; carried: CarriedHeaders };
