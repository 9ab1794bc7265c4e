import { AdaptiveRate } from './adaptive-rate.ts';
import { createBalancer } from './balancers.ts';
import { CircuitBreaker } from './circuit-breaker.ts';
import { Gcra } from './gcra.ts';
import { OutlierDetector } from './outlier.ts';
import { RetryBudget } from './retry-budget.ts';
import type { Balancer, BalancerPolicy, Target } from './types.ts';

/** The upstream part of a route's configuration, structurally the gateway file's. */
export interface UpstreamSettings {
  targets: Array<{ url: string; weight: number; region?: string | undefined; zone?: string | undefined }>;
  balancer: BalancerPolicy;
  locality: boolean;
  outlierDetection: {
    consecutiveFailures: number;
    failureRatePercent?: number | undefined;
    minRequests: number;
    intervalMs: number;
    baseEjectionMs: number;
    maxEjectionMs: number;
    maxEjectionPercent: number;
    panicThresholdPercent: number;
  };
  circuitBreaker: { failureThreshold: number; openMs: number; halfOpenProbes: number };
  retryBudget: { percent: number; minRetries: number };
  rateLimit?: { requestsPerSecond: number; burst: number } | undefined;
  targetRateLimit?: { requestsPerSecond: number; burst: number } | undefined;
  maxConcurrent?: number | undefined;
  adaptive: { enabled: boolean; decreaseFactor: number };
}

export type Admission =
  | { kind: 'go'; target: Target }
  | {
      kind: 'wait';
      reason: WaitReason;
      /** When to ask again; undefined: when a request of this upstream finishes. */
      waitMs: number | undefined;
    };

export const waitReasons = ['down', 'concurrency', 'rate', 'target-rate', 'retry-budget'] as const;
export type WaitReason = (typeof waitReasons)[number];

/** How a finished try went, for health and adaptive shaping. */
export interface TryReport {
  /** The target answered or failed in a way that counts against its health (connection failures, 5xx). */
  healthFailure: boolean;
  /** The upstream asked to slow down (429 or a Retry-After). */
  throttled: boolean;
  retryAfterMs?: number | undefined;
}

export interface UpstreamStateOptions {
  locality?: { region?: string | undefined; zone?: string | undefined } | undefined;
  /** Requests in flight toward one target from this process (the route's concurrency). */
  concurrencyPerTarget: number;
  random?: () => number;
  onCircuitTransition?(targetId: string, from: string, to: string): void;
  onEjection?(targetId: string): void;
}

interface TargetState {
  target: Target;
  breaker: CircuitBreaker;
  rate: Gcra | undefined;
  outstanding: number;
  /** Marked unhealthy by active health checks. */
  failingChecks: boolean;
}

/**
 * One upstream's traffic state in this process: its targets and their health (passive outlier detection,
 * active checks, a circuit breaker each), the balancer, the retry budget, rate limits (adaptive when the
 * upstream throttles) and concurrency. `admit` says whether a request may go now and to which target, or how
 * long it should wait; it never refuses for good, because a queue waits instead of failing.
 */
export class UpstreamState {
  #settings: UpstreamSettings;
  readonly #options: UpstreamStateOptions;
  readonly #random: () => number;
  #balancer: Balancer;
  #outlier: OutlierDetector;
  #retryBudget: RetryBudget;
  #upstreamRate: Gcra | undefined;
  #adaptive: AdaptiveRate | undefined;
  #targets = new Map<string, TargetState>();
  #inFlight = 0;

  constructor(settings: UpstreamSettings, options: UpstreamStateOptions) {
    this.#settings = settings;
    this.#options = options;
    this.#random = options.random ?? Math.random;
    this.#balancer = this.#makeBalancer(settings);
    this.#outlier = new OutlierDetector(settings.outlierDetection);
    this.#retryBudget = new RetryBudget(settings.retryBudget);
    this.#upstreamRate = settings.rateLimit
      ? new Gcra({ ratePerSecond: settings.rateLimit.requestsPerSecond, burst: settings.rateLimit.burst })
      : undefined;
    this.#adaptive = this.#makeAdaptive(settings);
    this.#targets = this.#makeTargets(settings, new Map());
  }

  /** Applies a changed configuration, keeping the state (health, counts) of targets that remain. */
  reconfigure(settings: UpstreamSettings): void {
    const previous = this.#settings;
    this.#settings = settings;
    if (previous.balancer !== settings.balancer || previous.locality !== settings.locality) {
      this.#balancer = this.#makeBalancer(settings);
    }
    if (JSON.stringify(previous.outlierDetection) !== JSON.stringify(settings.outlierDetection)) {
      this.#outlier = new OutlierDetector(settings.outlierDetection);
    }
    if (JSON.stringify(previous.retryBudget) !== JSON.stringify(settings.retryBudget)) {
      this.#retryBudget = new RetryBudget(settings.retryBudget);
    }
    if (JSON.stringify(previous.rateLimit) !== JSON.stringify(settings.rateLimit)) {
      this.#upstreamRate = settings.rateLimit
        ? new Gcra({ ratePerSecond: settings.rateLimit.requestsPerSecond, burst: settings.rateLimit.burst })
        : undefined;
      this.#adaptive = this.#makeAdaptive(settings);
    }
    this.#targets = this.#makeTargets(settings, this.#targets);
  }

  get targets(): Target[] {
    return [...this.#targets.values()].map((state) => state.target);
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /**
   * Whether some request could be admitted now, without taking anything: lets a caller decide whose turn it is
   * (lanes, tenants) only when a slot is really free.
   */
  ready(now: number): { kind: 'go' } | Extract<Admission, { kind: 'wait' }> {
    const blocked = this.#blocked(now);
    if (blocked !== undefined) return blocked;
    if (this.#upstreamRate !== undefined) {
      if (this.#adaptive !== undefined) this.#upstreamRate.setRate(this.#adaptive.current(now), now);
      const wait = this.#upstreamRate.peekWaitMs(now);
      if (wait > 0) return { kind: 'wait', reason: 'rate', waitMs: Math.max(1, wait) };
    }
    return { kind: 'go' };
  }

  /** The first reason no request could go now (concurrency, health, every target full), if any. */
  #blocked(now: number): Extract<Admission, { kind: 'wait' }> | undefined {
    const max = this.#settings.maxConcurrent;
    if (max !== undefined && this.#inFlight >= max)
      return { kind: 'wait', reason: 'concurrency', waitMs: undefined };
    const healthy = this.#healthy(now);
    if (healthy.length === 0) return { kind: 'wait', reason: 'down', waitMs: this.#untilProbe(now) };
    const room = healthy.filter((state) => !this.#saturated(state, now));
    if (room.length > 0) return undefined;
    const rateWaits = healthy.flatMap((state) => (state.rate ? [state.rate.peekWaitMs(now)] : []));
    const allRateLimited = rateWaits.length === healthy.length && rateWaits.every((wait) => wait > 0);
    return allRateLimited
      ? { kind: 'wait', reason: 'target-rate', waitMs: Math.max(1, Math.min(...rateWaits)) }
      : { kind: 'wait', reason: 'concurrency', waitMs: undefined };
  }

  admit(request: { hashKey?: string | undefined; isRetry: boolean }, now: number): Admission {
    if (request.isRetry && !this.#retryBudget.canRetry())
      return { kind: 'wait', reason: 'retry-budget', waitMs: undefined };
    const max = this.#settings.maxConcurrent;
    if (max !== undefined && this.#inFlight >= max)
      return { kind: 'wait', reason: 'concurrency', waitMs: undefined };
    const healthy = this.#healthy(now);
    if (healthy.length === 0) return { kind: 'wait', reason: 'down', waitMs: this.#untilProbe(now) };
    const room = healthy.filter((state) => !this.#saturated(state, now));
    if (room.length === 0) {
      const rateWaits = healthy.flatMap((state) => (state.rate ? [state.rate.peekWaitMs(now)] : []));
      const allRateLimited = rateWaits.length === healthy.length && rateWaits.every((wait) => wait > 0);
      return allRateLimited
        ? { kind: 'wait', reason: 'target-rate', waitMs: Math.max(1, Math.min(...rateWaits)) }
        : { kind: 'wait', reason: 'concurrency', waitMs: undefined };
    }
    if (this.#upstreamRate !== undefined) {
      if (this.#adaptive !== undefined) this.#upstreamRate.setRate(this.#adaptive.current(now), now);
      const taken = this.#upstreamRate.take(now);
      if (!taken.allowed) return { kind: 'wait', reason: 'rate', waitMs: Math.max(1, taken.waitMs) };
    }
    const picked = this.#balancer.pick(
      room.map((state) => state.target),
      {
        ...(request.hashKey !== undefined ? { hashKey: request.hashKey } : {}),
        random: this.#random,
        outstanding: (id) => this.#targets.get(id)?.outstanding ?? 0,
        saturated: (id) => {
          const state = this.#targets.get(id);
          return state === undefined || this.#saturated(state, now);
        },
      },
    );
    const state = picked === undefined ? undefined : this.#targets.get(picked.id);
    if (state === undefined) return { kind: 'wait', reason: 'concurrency', waitMs: undefined };
    state.rate?.take(now);
    state.breaker.onRequest(now);
    state.outstanding += 1;
    this.#inFlight += 1;
    this.#retryBudget.begin(request.isRetry);
    return { kind: 'go', target: state.target };
  }

  /** A try admitted by {@link admit} has finished. */
  release(target: Target, isRetry: boolean, report: TryReport, now: number): void {
    this.#inFlight -= 1;
    this.#retryBudget.end(isRetry);
    const state = this.#targets.get(target.id);
    if (state !== undefined) {
      state.outstanding -= 1;
      const wasEjected = this.#outlier.isEjected(target.id, now);
      this.#outlier.record(target.id, !report.healthFailure, now);
      if (!wasEjected && this.#outlier.isEjected(target.id, now)) this.#options.onEjection?.(target.id);
      state.breaker.onResult(!report.healthFailure, now);
    }
    if (report.throttled) this.#adaptive?.onThrottle(now, report.retryAfterMs);
  }

  /** Active health checks' verdict on a target. */
  markChecked(targetId: string, healthy: boolean): void {
    const state = this.#targets.get(targetId);
    if (state !== undefined) state.failingChecks = !healthy;
  }

  /** No target can take a request: every one is ejected, failing its checks or behind an open breaker. */
  isDown(now: number): boolean {
    return this.#healthy(now).length === 0;
  }

  /** The current rate limit of the whole upstream (lowered while it throttles), if it has one. */
  currentRate(now: number): number | undefined {
    return this.#adaptive?.current(now) ?? this.#settings.rateLimit?.requestsPerSecond;
  }

  snapshot(now: number) {
    return [...this.#targets.values()].map((state) => ({
      targetId: state.target.id,
      outstanding: state.outstanding,
      ejected: this.#outlier.isEjected(state.target.id, now),
      circuit: state.breaker.state(now),
      failingChecks: state.failingChecks,
    }));
  }

  #healthy(now: number): TargetState[] {
    // Every target failing its active checks means the upstream is down: wait for a check to pass.
    const checked = [...this.#targets.values()].filter((state) => !state.failingChecks);
    if (checked.length === 0) return [];
    const passive = this.#outlier.available(
      checked.map((state) => state.target),
      now,
    );
    return passive.flatMap((target) => {
      const state = this.#targets.get(target.id);
      return state?.breaker.canRequest(now) ? [state] : [];
    });
  }

  #saturated(state: TargetState, now: number): boolean {
    if (state.outstanding >= this.#options.concurrencyPerTarget) return true;
    return state.rate !== undefined && state.rate.peekWaitMs(now) > 0;
  }

  /**
   * How long until some target may be tried again: its breaker half-opens and its ejection ends. Computed from
   * the deadlines, never by asking the breakers about a future instant (asking moves their state).
   */
  #untilProbe(now: number): number {
    let soonest = Number.POSITIVE_INFINITY;
    for (const state of this.#targets.values()) {
      if (state.failingChecks) continue;
      const at = Math.max(
        state.breaker.halfOpensAt() ?? now,
        this.#outlier.ejectedUntil(state.target.id, now) ?? now,
      );
      soonest = Math.min(soonest, at - now);
    }
    // Every target failing its active checks: look again at about the checks' pace.
    return Number.isFinite(soonest) ? Math.max(10, soonest) : 1_000;
  }

  #makeBalancer(settings: UpstreamSettings): Balancer {
    return createBalancer(settings.balancer, settings.locality ? this.#options.locality : undefined);
  }

  #makeAdaptive(settings: UpstreamSettings): AdaptiveRate | undefined {
    if (!settings.adaptive.enabled || settings.rateLimit === undefined) return undefined;
    return new AdaptiveRate({
      maxRatePerSecond: settings.rateLimit.requestsPerSecond,
      decreaseFactor: settings.adaptive.decreaseFactor,
    });
  }

  #makeTargets(settings: UpstreamSettings, previous: Map<string, TargetState>): Map<string, TargetState> {
    const next = new Map<string, TargetState>();
    for (const config of settings.targets) {
      const target: Target = {
        id: config.url,
        url: config.url,
        weight: config.weight,
        ...(config.region !== undefined ? { region: config.region } : {}),
        ...(config.zone !== undefined ? { zone: config.zone } : {}),
      };
      const kept = previous.get(target.id);
      next.set(target.id, {
        target,
        breaker:
          kept?.breaker ??
          new CircuitBreaker({
            ...settings.circuitBreaker,
            onTransition: (from, to) => this.#options.onCircuitTransition?.(target.id, from, to),
          }),
        rate: settings.targetRateLimit
          ? (kept?.rate ??
            new Gcra({
              ratePerSecond: settings.targetRateLimit.requestsPerSecond,
              burst: settings.targetRateLimit.burst,
            }))
          : undefined,
        outstanding: kept?.outstanding ?? 0,
        failingChecks: kept?.failingChecks ?? false,
      });
    }
    return next;
  }
}
