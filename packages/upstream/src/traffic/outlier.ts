/**
 * Outlier detection after Envoy's: targets that keep failing are ejected from their upstream's candidates for a
 * while, so that one broken instance does not fail a share of every request. Pure and clock-driven: every
 * time-dependent method takes `now` in milliseconds.
 */

export interface OutlierOptions {
  /** Failures in a row that eject a target (Envoy's consecutive_5xx). */
  consecutiveFailures: number;
  /**
   * Eject a target when more than this percentage of its requests in the last interval failed (Envoy's
   * failure_percentage_threshold); the rule is off when absent.
   */
  failureRatePercent?: number;
  /** Requests a target must have had in the last interval before the failure-rate rule judges it. */
  minRequests: number;
  /** The failure-rate rule's window, and the period after which a healthy target's ejection multiplier shrinks. */
  intervalMs: number;
  /** The first ejection's length; the n-th in a row lasts n times as long. */
  baseEjectionMs: number;
  /** No ejection lasts longer. */
  maxEjectionMs: number;
  /** The percentage of known targets that may be ejected at once (at least one, never the last healthy one). */
  maxEjectionPercent: number;
  /** Below this percentage of healthy targets, ejection is ignored and every target is a candidate (panic). */
  panicThresholdPercent: number;
}

/** Envoy's defaults; the failure-rate rule is off unless `failureRatePercent` is given. */
export const defaultOutlierOptions = {
  consecutiveFailures: 5,
  minRequests: 10,
  intervalMs: 10_000,
  baseEjectionMs: 30_000,
  maxEjectionMs: 300_000,
  maxEjectionPercent: 10,
  panicThresholdPercent: 50,
} as const satisfies OutlierOptions;

/** One target's health, for metrics. */
export interface OutlierTargetState {
  targetId: string;
  ejected: boolean;
  /** When the current ejection ends; present only while ejected. */
  until?: number;
  /** How many times the target has been ejected since it became known. */
  times: number;
}

// The failure-rate window slides in tenths of the interval: a bounded count per target, whatever the request
// rate, at the cost of judging between 90% and 100% of the last interval.
const bucketsPerInterval = 10;

interface Bucket {
  index: number;
  successes: number;
  failures: number;
}

interface TargetHealth {
  consecutiveFailures: number;
  /** Oldest first; at most bucketsPerInterval. */
  buckets: Bucket[];
  /** The end of the latest ejection (past or current); undefined until the first one. */
  ejectedUntil: number | undefined;
  times: number;
  /** What the next ejection's length is multiplied by, before it is incremented; shrinks while healthy. */
  multiplier: number;
}

/**
 * Ejects targets after `consecutiveFailures` failures in a row, or when their failure rate over the last
 * interval exceeds `failureRatePercent`, for `baseEjectionMs × multiplier` (capped at `maxEjectionMs`). The
 * multiplier grows by one with each ejection and, as in Envoy, shrinks by one for each full `intervalMs` the
 * target has been back and not ejected, so a target that failed once long ago starts again from the base length.
 *
 * At most max(1, floor(n × maxEjectionPercent / 100)) of the n known targets are ejected at once, and never the
 * last healthy one (so a single target is never ejected). Known targets are those passed to `available` or
 * `record` and not forgotten since. Results recorded while a target is ejected are ignored: they come from
 * requests sent before the ejection or in panic mode, and the target starts with a clean slate when it returns.
 */
export class OutlierDetector {
  readonly #options: OutlierOptions;
  readonly #targets = new Map<string, TargetHealth>();

  constructor(options: Partial<OutlierOptions> = {}) {
    this.#options = { ...defaultOutlierOptions, ...options };
    validate(this.#options);
  }

  /** Records the result of one request to a target, and ejects the target when a rule says so and room allows. */
  record(targetId: string, success: boolean, now: number): void {
    const health = this.#health(targetId);
    if (ejectedAt(health, now)) return;
    health.consecutiveFailures = success ? 0 : health.consecutiveFailures + 1;
    countInWindow(health, success, now, this.#options.intervalMs);
    // A target over a threshold but refused for lack of room stays over it, so its next failure tries again.
    if (this.#failing(health) && this.#roomToEject(now)) this.#eject(health, now);
  }

  isEjected(targetId: string, now: number): boolean {
    const health = this.#targets.get(targetId);
    return health !== undefined && ejectedAt(health, now);
  }

  /**
   * The targets not ejected, in their given order; all of them when fewer than `panicThresholdPercent` are
   * healthy, because concentrating the load on the few left would take them down too (Envoy's panic mode).
   */
  available<T extends { id: string }>(targets: readonly T[], now: number): T[] {
    for (const target of targets) this.#health(target.id);
    const healthy = targets.filter((target) => !this.isEjected(target.id, now));
    if (healthy.length * 100 < this.#options.panicThresholdPercent * targets.length) return [...targets];
    return healthy;
  }

  /** When a target's current ejection ends; undefined when it is not ejected at `now`. */
  ejectedUntil(targetId: string, now: number): number | undefined {
    const until = this.#targets.get(targetId)?.ejectedUntil;
    return until !== undefined && now < until ? until : undefined;
  }

  /** How many times a target has been ejected (0 when unknown). */
  ejectionCount(targetId: string): number {
    return this.#targets.get(targetId)?.times ?? 0;
  }

  /** Drops a target that left its upstream, so it no longer counts toward the ejection limit. */
  forget(targetId: string): void {
    this.#targets.delete(targetId);
  }

  /** Every known target's health, for metrics. */
  state(now: number): OutlierTargetState[] {
    return [...this.#targets].map(([targetId, { ejectedUntil, times }]) =>
      ejectedUntil !== undefined && now < ejectedUntil
        ? { targetId, ejected: true, until: ejectedUntil, times }
        : { targetId, ejected: false, times },
    );
  }

  #health(targetId: string): TargetHealth {
    let health = this.#targets.get(targetId);
    if (health === undefined) {
      health = { consecutiveFailures: 0, buckets: [], ejectedUntil: undefined, times: 0, multiplier: 0 };
      this.#targets.set(targetId, health);
    }
    return health;
  }

  #failing(health: TargetHealth): boolean {
    if (health.consecutiveFailures >= this.#options.consecutiveFailures) return true;
    const percent = this.#options.failureRatePercent;
    if (percent === undefined) return false;
    let requests = 0;
    let failures = 0;
    for (const bucket of health.buckets) {
      requests += bucket.successes + bucket.failures;
      failures += bucket.failures;
    }
    return requests >= this.#options.minRequests && failures * 100 > percent * requests;
  }

  #roomToEject(now: number): boolean {
    const known = this.#targets.size;
    let ejected = 0;
    for (const health of this.#targets.values()) if (ejectedAt(health, now)) ejected++;
    const limit = Math.max(1, Math.floor((known * this.#options.maxEjectionPercent) / 100));
    return ejected < limit && ejected + 1 < known;
  }

  #eject(health: TargetHealth, now: number): void {
    const { baseEjectionMs, maxEjectionMs, intervalMs } = this.#options;
    const healthyIntervals =
      health.ejectedUntil === undefined ? 0 : Math.floor(Math.max(0, now - health.ejectedUntil) / intervalMs);
    health.multiplier = Math.max(0, health.multiplier - healthyIntervals) + 1;
    health.times++;
    health.ejectedUntil = now + Math.min(maxEjectionMs, baseEjectionMs * health.multiplier);
    health.consecutiveFailures = 0;
    health.buckets = [];
  }
}

function ejectedAt(health: TargetHealth, now: number): boolean {
  return health.ejectedUntil !== undefined && now < health.ejectedUntil;
}

function countInWindow(health: TargetHealth, success: boolean, now: number, intervalMs: number): void {
  const index = Math.floor(now / (intervalMs / bucketsPerInterval));
  health.buckets = health.buckets.filter((bucket) => bucket.index > index - bucketsPerInterval);
  let bucket = health.buckets.at(-1);
  // A clock that steps back counts into the newest bucket rather than reordering the window.
  if (bucket === undefined || bucket.index < index) {
    bucket = { index, successes: 0, failures: 0 };
    health.buckets.push(bucket);
  }
  if (success) bucket.successes++;
  else bucket.failures++;
}

function validate(options: OutlierOptions): void {
  const positive = ['consecutiveFailures', 'intervalMs', 'baseEjectionMs', 'maxEjectionMs'] as const;
  for (const name of positive) {
    if (!(options[name] > 0)) throw new RangeError(`outlier ${name} must be positive, got ${options[name]}`);
  }
  const percents = ['maxEjectionPercent', 'panicThresholdPercent', 'failureRatePercent'] as const;
  for (const name of percents) {
    const value = options[name];
    if (value !== undefined && !(value >= 0 && value <= 100)) {
      throw new RangeError(`outlier ${name} must be within [0, 100], got ${value}`);
    }
  }
  if (!(options.minRequests >= 0)) {
    throw new RangeError(`outlier minRequests must not be negative, got ${options.minRequests}`);
  }
}
