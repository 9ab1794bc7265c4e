import type { GatewayConfig } from '@sluice/gateway-config';
import type { RateLimitDecision, StateStore } from '@sluice/state';
import { HttpProblem } from './problems.ts';
import type { QueueEstimate } from './queue-stats.ts';

export type LoadDecision = 'accept' | 'shed' | 'reject';

export interface LoadInput {
  /** Requests waiting for the batch-workers, as last sampled; undefined before the first sample. */
  lag: number | undefined;
  shedLag: number;
  rejectLag: number;
  /** The tenant's share of what this replica accepted recently, 0..1. */
  tenantShare: number;
  /** Tenants that submitted recently (at least 1). */
  activeTenants: number;
}

/** A tenant sending this much more than an equal share is "heavy". Slack so that equal tenants are not shed. */
const heavyFactor = 1.2;

/**
 * Whether the queue can take a submission: above `rejectLag` nobody's (503); above `shedLag` not the heavy
 * tenants' (429), so that the tenants who caused the backlog slow down first and the light ones keep going.
 * Unknown lag (not sampled yet, Kafka unreachable) accepts: a produce that fails answers 503 by itself.
 */
export function loadDecision(input: LoadInput): LoadDecision {
  if (input.lag === undefined || input.lag < input.shedLag) return 'accept';
  if (input.lag >= input.rejectLag) return 'reject';
  const fairShare = 1 / Math.max(1, input.activeTenants);
  return input.tenantShare > fairShare * heavyFactor ? 'shed' : 'accept';
}

/**
 * Recently accepted requests per tenant in this replica, decayed exponentially (half-life `halfLifeMs`), for
 * "who is sending most right now" without keeping a window of timestamps.
 */
export class TenantShares {
  readonly #halfLifeMs: number;
  readonly #counts = new Map<string, { value: number; at: number }>();

  constructor(halfLifeMs = 10_000) {
    this.#halfLifeMs = halfLifeMs;
  }

  note(tenant: string, count: number, now: number): void {
    this.#counts.set(tenant, { value: this.#decayed(tenant, now) + count, at: now });
  }

  /** The tenant's share of the decayed total and how many tenants sent at least one request lately. */
  shareOf(tenant: string, now: number): { share: number; active: number } {
    let total = 0;
    let active = 0;
    for (const [name, entry] of this.#counts) {
      const value = this.#decay(entry, now);
      if (value < 0.01) {
        this.#counts.delete(name);
        continue;
      }
      total += value;
      // One request within the last two half-lives makes a tenant active.
      if (value >= 0.25) active += 1;
    }
    return { share: total === 0 ? 0 : this.#decayed(tenant, now) / total, active };
  }

  #decayed(tenant: string, now: number): number {
    const entry = this.#counts.get(tenant);
    return entry === undefined ? 0 : this.#decay(entry, now);
  }

  #decay(entry: { value: number; at: number }, now: number): number {
    return entry.value * 0.5 ** (Math.max(0, now - entry.at) / this.#halfLifeMs);
  }
}

/** The IETF RateLimit header fields (draft-ietf-httpapi-ratelimit-headers) of a decision. */
export function rateLimitHeaders(
  decision: RateLimitDecision,
  rule: { requestsPerSecond: number; burst: number },
): Record<string, string> {
  const windowSeconds = Math.max(1, Math.ceil(rule.burst / rule.requestsPerSecond));
  const headers: Record<string, string> = {
    'ratelimit-limit': String(decision.limit),
    'ratelimit-remaining': String(decision.remaining),
    'ratelimit-reset': String(Math.ceil(decision.resetMs / 1000)),
    'ratelimit-policy': `${rule.burst};w=${windowSeconds}`,
  };
  if (!decision.allowed)
    headers['retry-after'] = String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000)));
  return headers;
}

/**
 * Submissions of this replica waiting for Kafka's acknowledgement, oldest first: how far behind the broker (or
 * this process) is right now, measured where it shows first. Acknowledgements come back in order (one produce
 * in flight at a time), so a queue with lazy removal keeps this O(1) per submission.
 */
export class AcknowledgementBacklog {
  readonly #waiting: Array<{ since: number; done: boolean }> = [];
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Counts the submission as waiting until `acknowledged` settles, either way. */
  async track<T>(acknowledged: Promise<T>): Promise<T> {
    const entry = { since: this.#now(), done: false };
    this.#waiting.push(entry);
    try {
      return await acknowledged;
    } finally {
      entry.done = true;
      while (this.#waiting[0]?.done) this.#waiting.shift();
    }
  }

  /** How long the oldest submission still waiting has waited, 0 when none is. */
  oldestWaitMs(): number {
    const oldest = this.#waiting.find((entry) => !entry.done);
    return oldest === undefined ? 0 : this.#now() - oldest.since;
  }
}

export interface AdmissionDeps {
  /** The shared store (its counters are shared by every replica when it is Redis). */
  store: StateStore;
  /** This replica's own counters, used while the shared store cannot answer (fail open to a local limit). */
  local: StateStore;
  queue: {
    lag: bigint | undefined;
    secondsToDrainTo(lag: number): number;
    /** Where a request accepted now stands: its wait for a worker by the sampled lag and drain rate. */
    current(): QueueEstimate;
    noteAccepted(count: number): void;
  };
  onStoreUnavailable(error: unknown): void;
  /** False while Kafka does not answer: submissions are refused at once rather than held until produce fails. */
  kafkaReachable(): boolean;
  /** Submissions waiting for their acknowledgement (see AcknowledgementBacklog). */
  backlog?: { oldestWaitMs(): number };
  now?: () => number;
}

/**
 * Decides whether a tenant's submission of `cost` requests gets in: the queue's backpressure first (no round
 * trip), then the tenant's rate limit. Refusals are HttpProblems carrying Retry-After; an admitted submission's
 * rate-limit headers are returned for the answer.
 */
export class Admission {
  readonly #deps: AdmissionDeps;
  readonly #shares = new TenantShares();
  readonly #now: () => number;

  constructor(deps: AdmissionDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
  }

  /**
   * `queued: false` for direct-mode calls, which do not add to the queue and so are not held back by it;
   * `holds: true` for a submission whose client waits for its result (Prefer: wait).
   */
  async admit(
    config: GatewayConfig,
    tenant: string,
    cost: number,
    { queued = true, holds = false } = {},
  ): Promise<Record<string, string>> {
    if (queued && !this.#deps.kafkaReachable()) {
      throw new HttpProblem('enqueue-failed', {
        detail: 'Kafka does not answer now; nothing was accepted',
        headers: { 'retry-after': '5' },
      });
    }
    if (queued) this.#checkAcknowledgements(config);
    if (queued) this.#checkLoad(config, tenant);
    if (queued && holds) this.#checkQueueWait(config);
    const headers = await this.#checkRate(config, tenant, cost);
    this.#shares.note(tenant, cost, this.#now());
    if (queued) this.#deps.queue.noteAccepted(cost);
    return headers;
  }

  #checkAcknowledgements(config: GatewayConfig): void {
    const waited = this.#deps.backlog?.oldestWaitMs() ?? 0;
    const bound = config.backpressure.maxAcceptWaitMs;
    if (waited <= bound) return;
    throw new HttpProblem('overloaded', {
      detail: `submissions wait ${waited} ms for Kafka's acknowledgement, above the bound of ${bound} ms; nothing was accepted, try again shortly`,
      headers: { 'retry-after': String(Math.max(1, Math.ceil(waited / 1000))) },
    });
  }

  /**
   * A client holding its connection for the result gives up at its own time-out however long the queue is. While
   * the requests ahead would keep this one from a worker for longer than `maxQueueWaitMs`, it is refused now
   * (queued without Prefer: wait, the same request is still taken).
   */
  #checkQueueWait(config: GatewayConfig): void {
    const estimate = this.#deps.queue.current().estimatedMs;
    const bound = config.backpressure.maxQueueWaitMs;
    if (estimate === null || estimate <= bound) return;
    const lag = Number(this.#deps.queue.lag ?? 0n);
    const lagAtBound = Math.floor((lag * bound) / estimate);
    throw new HttpProblem('overloaded', {
      detail: `the requests ahead would take about ${estimate} ms to reach a worker, above the bound of ${bound} ms for a submission that waits for its result; submit it without Prefer: wait to be queued, or try again later`,
      headers: { 'retry-after': String(this.#deps.queue.secondsToDrainTo(lagAtBound)) },
    });
  }

  #checkLoad(config: GatewayConfig, tenant: string): void {
    const lag = this.#deps.queue.lag;
    const { share, active } = this.#shares.shareOf(tenant, this.#now());
    const { shedLag, rejectLag } = config.backpressure;
    const decision = loadDecision({
      lag: lag === undefined ? undefined : Number(lag),
      shedLag,
      rejectLag,
      tenantShare: share,
      activeTenants: active,
    });
    if (decision === 'accept') return;
    const retryAfter = String(this.#deps.queue.secondsToDrainTo(decision === 'reject' ? rejectLag : shedLag));
    if (decision === 'reject') {
      throw new HttpProblem('overloaded', {
        detail: `${lag} requests are waiting, above the bound of ${rejectLag}; try again later`,
        headers: { 'retry-after': retryAfter },
      });
    }
    throw new HttpProblem('load-shed', {
      detail: `${lag} requests are waiting and this tenant sent ${Math.round(share * 100)}% of recent traffic; slow down`,
      headers: { 'retry-after': retryAfter },
    });
  }

  async #checkRate(config: GatewayConfig, tenant: string, cost: number): Promise<Record<string, string>> {
    const rule = config.tenants[tenant]?.rateLimit;
    if (rule === undefined) return {};
    const key = `tenant:${tenant}`;
    const limit = { ratePerSecond: rule.requestsPerSecond, burst: rule.burst };
    let decision: RateLimitDecision;
    try {
      decision = await this.#deps.store.consumeRateLimit(key, limit, cost);
    } catch (error) {
      this.#deps.onStoreUnavailable(error);
      decision = await this.#deps.local.consumeRateLimit(key, limit, cost);
    }
    const headers = rateLimitHeaders(decision, rule);
    if (decision.allowed) return headers;
    if (decision.retryAfterMs === Number.POSITIVE_INFINITY) {
      const { 'retry-after': _, ...rest } = headers;
      throw new HttpProblem('too-large', {
        detail: `${cost} requests at once exceed this tenant's burst of ${rule.burst}; split the batch`,
        headers: rest,
      });
    }
    throw new HttpProblem('rate-limited', {
      detail: `this tenant may submit ${rule.requestsPerSecond} requests per second (bursts of ${rule.burst})`,
      headers,
    });
  }
}
