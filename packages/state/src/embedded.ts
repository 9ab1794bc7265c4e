import { EventEmitter } from 'node:events';
import { type StatusMessage, supersedes } from '@sluice/contracts';
import { rateLimitDecision } from './rate-limit.ts';
import type {
  IdempotencyClaim,
  IdempotencyScope,
  RateLimitDecision,
  RateLimitRule,
  StateStore,
  StatusListener,
} from './types.ts';

export interface EmbeddedStoreOptions {
  /** Statuses accepted longer ago than this are forgotten (lookups answer 404). */
  retentionMs: number;
  /** Upper bound of statuses held; the oldest go first. Bounds memory together with the response size limit. */
  maxStatuses: number;
  now?: () => number;
}

interface IdempotencyEntry {
  id: string;
  fingerprint: string;
  expiresAt: number;
}

/**
 * The default store for one machine and for `pnpm start`: statuses and idempotency keys in this process's
 * memory, fed from the compacted status topic (see {@link StatusFeed}) so that every replica converges on the
 * same view and a restart rebuilds it. Idempotency is exact within one replica; across replicas a duplicate
 * is caught once the first request's status has reached the other replica (use Redis for exactness there).
 */
export class EmbeddedStateStore implements StateStore {
  readonly kind = 'embedded' as const;
  readonly #options: EmbeddedStoreOptions;
  readonly #now: () => number;
  /** In insertion order, which is close to acceptance order: eviction takes from the front. */
  readonly #statuses = new Map<string, StatusMessage>();
  readonly #batches = new Map<string, Set<string>>();
  readonly #idempotency = new Map<string, IdempotencyEntry>();
  readonly #events = new EventEmitter();
  /** Theoretical arrival times relative to `#origin`; a full bucket's entry is removed. */
  readonly #buckets = new Map<string, number>();
  readonly #origin: number;
  #ready = false;

  constructor(options: EmbeddedStoreOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#origin = this.#now();
    this.#events.setMaxListeners(0);
  }

  /** Marks the store loaded; until then lookups may miss what the status topic holds. */
  markReady(): void {
    this.#ready = true;
  }

  ready(): boolean {
    return this.#ready;
  }

  get size(): number {
    return this.#statuses.size;
  }

  async getStatus(id: string): Promise<StatusMessage | undefined> {
    const status = this.#statuses.get(id);
    if (status === undefined || this.#expired(status)) return undefined;
    return status;
  }

  async getBatch(batchId: string): Promise<StatusMessage[] | undefined> {
    const ids = this.#batches.get(batchId);
    if (ids === undefined) return undefined;
    const statuses = [...ids].flatMap((id) => {
      const status = this.#statuses.get(id);
      return status === undefined || this.#expired(status) ? [] : [status];
    });
    return statuses.length === 0 ? undefined : statuses;
  }

  async applyStatuses(statuses: StatusMessage[]): Promise<void> {
    for (const status of statuses) this.#apply(status);
    this.#evict();
  }

  #apply(next: StatusMessage): void {
    const current = this.#statuses.get(next.id);
    if (current !== undefined && !supersedes(next, current)) return;
    this.#statuses.set(next.id, next);
    let batch = this.#batches.get(next.batchId);
    if (batch === undefined) {
      batch = new Set();
      this.#batches.set(next.batchId, batch);
    }
    batch.add(next.id);
    if (next.idempotency !== undefined) {
      const key = scopeKey({ tenant: next.tenant, key: next.idempotency.key });
      if (!this.#idempotency.has(key)) {
        // A key names what was submitted under it: a batch by its id (a single request's id is its batch id).
        this.#idempotency.set(key, {
          id: next.batchId,
          fingerprint: next.idempotency.fingerprint,
          expiresAt: next.timings.acceptedAt + this.#options.retentionMs,
        });
      }
    }
    this.#events.emit(`id:${next.id}`, next);
    this.#events.emit(`batch:${next.batchId}`, next);
  }

  subscribe(target: { id: string } | { batchId: string }, listener: StatusListener): () => void {
    const event = 'id' in target ? `id:${target.id}` : `batch:${target.batchId}`;
    this.#events.on(event, listener);
    return () => this.#events.off(event, listener);
  }

  async claimIdempotencyKey(
    scope: IdempotencyScope,
    fingerprint: string,
    candidateId: string,
    ttlMs: number,
  ): Promise<IdempotencyClaim> {
    const key = scopeKey(scope);
    const existing = this.#idempotency.get(key);
    if (existing !== undefined && existing.expiresAt > this.#now()) {
      return existing.fingerprint === fingerprint
        ? { outcome: 'existing', id: existing.id }
        : { outcome: 'conflict', id: existing.id };
    }
    this.#idempotency.set(key, { id: candidateId, fingerprint, expiresAt: this.#now() + ttlMs });
    return { outcome: 'claimed' };
  }

  async releaseIdempotencyKey(scope: IdempotencyScope, candidateId: string): Promise<void> {
    const key = scopeKey(scope);
    if (this.#idempotency.get(key)?.id === candidateId) this.#idempotency.delete(key);
  }

  async consumeRateLimit(key: string, rule: RateLimitRule, cost: number): Promise<RateLimitDecision> {
    const now = this.#now() - this.#origin;
    const decision = rateLimitDecision(this.#buckets.get(key) ?? now, now, rule, cost);
    if (decision.allowed) this.#buckets.set(key, decision.newTat);
    if (this.#buckets.size > this.#options.maxStatuses) {
      for (const [bucket, tat] of this.#buckets) if (tat <= now) this.#buckets.delete(bucket);
    }
    const { newTat: _, ...answer } = decision;
    return answer;
  }

  async close(): Promise<void> {
    this.#events.removeAllListeners();
  }

  #expired(status: StatusMessage): boolean {
    return status.timings.acceptedAt + this.#options.retentionMs <= this.#now();
  }

  #evict(): void {
    const now = this.#now();
    for (const [id, status] of this.#statuses) {
      const tooMany = this.#statuses.size > this.#options.maxStatuses;
      if (!tooMany && !this.#expired(status)) break;
      this.#statuses.delete(id);
      const batch = this.#batches.get(status.batchId);
      batch?.delete(id);
      if (batch?.size === 0) this.#batches.delete(status.batchId);
    }
    if (this.#idempotency.size > this.#options.maxStatuses) {
      for (const [key, entry] of this.#idempotency) {
        if (this.#idempotency.size <= this.#options.maxStatuses && entry.expiresAt > now) break;
        this.#idempotency.delete(key);
      }
    }
  }
}

function scopeKey(scope: IdempotencyScope): string {
  return `${scope.tenant}\u0000${scope.key}`;
}
