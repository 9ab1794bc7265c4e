import type { StatusMessage } from '@sluice/contracts';

export type IdempotencyClaim =
  /** The key was free: the caller's candidate id now owns it and the request is enqueued. */
  | { outcome: 'claimed' }
  /** The same key with the same content was seen before: answer with the original id, enqueue nothing. */
  | { outcome: 'existing'; id: string }
  /** The same key with different content: 422. */
  | { outcome: 'conflict'; id: string };

export interface IdempotencyScope {
  tenant: string;
  key: string;
}

export type StatusListener = (status: StatusMessage) => void;

/**
 * Sluice's shared state, behind one interface so that a single machine needs no extra server (embedded) and a
 * multi-replica deployment can share it (Redis). Kafka's status topic stays the source of truth: a store can be
 * rebuilt from it at any time.
 */
export interface StateStore {
  readonly kind: 'embedded' | 'redis';
  /** Latest known status of a request. */
  getStatus(id: string): Promise<StatusMessage | undefined>;
  /** Statuses of every request of a batch that this store knows, or undefined for an unknown batch. */
  getBatch(batchId: string): Promise<StatusMessage[] | undefined>;
  /**
   * Applies statuses, keeping per request the one furthest along its life (a late `queued` never replaces a
   * terminal status); listeners of changed requests and batches are told.
   */
  applyStatuses(statuses: StatusMessage[]): Promise<void>;
  /** Calls the listener with every later change of a request (by id) or of any request of a batch. */
  subscribe(target: { id: string } | { batchId: string }, listener: StatusListener): () => void;
  /**
   * Atomically claims an idempotency key for a candidate request id, for `ttlMs`. Of concurrent claims of one
   * key exactly one is `claimed`.
   */
  claimIdempotencyKey(
    scope: IdempotencyScope,
    fingerprint: string,
    candidateId: string,
    ttlMs: number,
  ): Promise<IdempotencyClaim>;
  /** Gives a claimed key back when its request could not be enqueued, so that the client's retry is accepted. */
  releaseIdempotencyKey(scope: IdempotencyScope, candidateId: string): Promise<void>;
  /** False while the store cannot answer (still loading, or its server unreachable). */
  ready(): boolean;
  close(): Promise<void>;
}
