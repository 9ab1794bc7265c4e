import { trace } from '@opentelemetry/api';
import { type Priority, progressRecord, requestRecord, statusRecord } from '@sluice/contracts';
import type { Producer, ProducerRecord } from '@sluice/kafka';
import {
  type IdempotencyClaim,
  type IdempotencyScope,
  type StateStore,
  StateUnavailableError,
} from '@sluice/state';
import { type PlannedBatch, withDerivedIds } from './plan.ts';
import { HttpProblem } from './problems.ts';

export interface EnqueueTopics {
  /** The request topic of each priority lane. */
  requests: Record<Priority, string>;
  status: string;
  results: string;
}

/** What a submission endpoint answers with: the id of the new request (or batch), or of the original. */
export function submittedId(outcome: EnqueueOutcome): { id: string; replayed: boolean } {
  return outcome.kind === 'accepted'
    ? { id: outcome.batch.batchId, replayed: false }
    : { id: outcome.id, replayed: true };
}

export type EnqueueOutcome =
  | { kind: 'accepted'; batch: PlannedBatch }
  /** An earlier request with the same idempotency key and content: its id, nothing enqueued. */
  | { kind: 'duplicate'; id: string };

const idempotencyTtlMs = 24 * 60 * 60 * 1000;

/**
 * Puts planned requests on Kafka: the request records, their `queued` statuses and the batch's announcement to
 * the aggregator travel in one produce call and are acknowledged (acks=all) before the client hears 202. An
 * idempotency key is claimed first and given back when producing fails, so the client's retry is accepted.
 */
export class Enqueuer {
  readonly #producer: Producer;
  readonly #store: StateStore;
  readonly #topics: EnqueueTopics;
  /** Claims in flight in this process: a concurrent duplicate waits for the first one's fate. */
  readonly #pending = new Map<string, Promise<void>>();

  readonly #onStoreError: (error: unknown) => void;
  readonly #onUnarbitrated: () => void;
  readonly #backlog: { track<T>(acknowledged: Promise<T>): Promise<T> } | undefined;

  constructor(
    producer: Producer,
    store: StateStore,
    topics: EnqueueTopics,
    hooks: {
      /** The store failed to take or answer something; the request goes on. */
      onStoreError?: (error: unknown) => void;
      /** A keyed submission was accepted under derived ids because the store could not claim its key. */
      onUnarbitrated?: () => void;
      /** Counts each produce as waiting until it is acknowledged (admission refuses while they wait long). */
      backlog?: { track<T>(acknowledged: Promise<T>): Promise<T> };
    } = {},
  ) {
    this.#producer = producer;
    this.#store = store;
    this.#topics = topics;
    this.#onStoreError = hooks.onStoreError ?? (() => {});
    this.#onUnarbitrated = hooks.onUnarbitrated ?? (() => {});
    this.#backlog = hooks.backlog;
  }

  /** Enqueues a planned batch, or finds the original of a repeated idempotency key (the batch's own). */
  async enqueue(batch: PlannedBatch): Promise<EnqueueOutcome> {
    const idempotency = batch.requests[0]?.message.idempotency;
    if (idempotency === undefined) {
      await this.#produce(batch);
      return { kind: 'accepted', batch };
    }
    const scope: IdempotencyScope = { tenant: batch.accepted.tenant, key: idempotency.key };
    const pendingKey = `${scope.tenant}\u0000${scope.key}`;
    await this.#pending.get(pendingKey);
    let claim: IdempotencyClaim;
    try {
      claim = await this.#store.claimIdempotencyKey(
        scope,
        idempotency.fingerprint,
        batch.batchId,
        idempotencyTtlMs,
      );
    } catch (error) {
      // The claim may have been made and only its answer lost: give it back (only this id's claim is released),
      // so that the client's retry is not answered with an id that was never enqueued.
      await this.#store.releaseIdempotencyKey(scope, batch.batchId).catch(() => {});
      if (!(error instanceof StateUnavailableError)) throw error;
      // The shared store cannot arbitrate the key: accept anyway, under ids every replica derives alike from the
      // key and content, so that the client's retries meanwhile carry the same ids and are de-duplicated
      // downstream by request id.
      this.#onStoreError(error);
      this.#onUnarbitrated();
      const derived = withDerivedIds(batch, idempotency);
      await this.#produce(derived);
      return { kind: 'accepted', batch: derived };
    }
    if (claim.outcome === 'conflict') {
      throw new HttpProblem('idempotency-conflict', {
        detail: `idempotency key "${scope.key}" was used for request ${claim.id} with different content`,
      });
    }
    if (claim.outcome === 'existing') return { kind: 'duplicate', id: claim.id };
    const producing = this.#produce(batch).catch(async (error: unknown) => {
      await this.#store.releaseIdempotencyKey(scope, batch.batchId);
      throw error;
    });
    const settled = producing.then(
      () => undefined,
      () => undefined,
    );
    this.#pending.set(pendingKey, settled);
    try {
      await producing;
    } finally {
      if (this.#pending.get(pendingKey) === settled) this.#pending.delete(pendingKey);
    }
    return { kind: 'accepted', batch };
  }

  /** Enqueues a batch that claims no idempotency key of its own (a redrive claims its generation itself). */
  async enqueueUnkeyed(batch: PlannedBatch): Promise<void> {
    await this.#produce(batch);
  }

  async #produce(batch: PlannedBatch): Promise<void> {
    const records: ProducerRecord[] = [];
    for (const { message, status } of batch.requests) {
      records.push(
        requestRecord(this.#topics.requests[message.priority], message),
        statusRecord(this.#topics.status, status),
      );
    }
    records.push(progressRecord(this.#topics.results, batch.accepted));
    // The records carry the trace context of the produce (a child of this HTTP request's span).
    trace.getActiveSpan()?.setAttribute('sluice.batch_id', batch.batchId);
    try {
      const sent = this.#producer.send(records);
      await (this.#backlog?.track(sent) ?? sent);
    } catch (cause) {
      throw new HttpProblem(
        'enqueue-failed',
        { detail: 'Kafka did not acknowledge the request; retry it', headers: { 'retry-after': '1' } },
        cause,
      );
    }
    // This replica answers lookups of what it accepted at once; the others catch up from the status topic. The
    // request is accepted whether or not the store takes it now: the status feed applies it from Kafka later.
    await this.#store.applyStatuses(batch.requests.map((r) => r.status)).catch((error: unknown) => {
      this.#onStoreError(error);
    });
  }
}
