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

/** A GCRA limit (a token bucket of `burst` refilled at `ratePerSecond`), as in the gateway file. */
export interface RateLimitRule {
  ratePerSecond: number;
  burst: number;
}

/** One rate-limit decision, with what the IETF RateLimit headers and Retry-After report. */
export interface RateLimitDecision {
  allowed: boolean;
  /** The bucket's size: RateLimit-Limit. */
  limit: number;
  /** Whole requests that would be allowed right after this decision: RateLimit-Remaining. */
  remaining: number;
  /** Milliseconds until the bucket is full again: RateLimit-Reset. */
  resetMs: number;
  /** When refused, milliseconds until the same request would be allowed (Infinity: never); 0 when allowed. */
  retryAfterMs: number;
}

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
  /**
   * Takes `cost` from the bucket of `key` under `rule`, atomically for every replica sharing the store; a refused
   * request takes nothing. A key's bucket is forgotten once full again.
   */
  consumeRateLimit(key: string, rule: RateLimitRule, cost: number): Promise<RateLimitDecision>;
  /** False while the store cannot answer (still loading, or its server unreachable). */
  ready(): boolean;
  close(): Promise<void>;
}
