/**
 * Adaptive rate control by AIMD (additive increase, multiplicative decrease, as in TCP congestion control): the
 * rate toward an upstream is cut by a factor when it throttles us (429, Retry-After) and climbs back linearly
 * while it does not. Pure and clock-driven; the result is meant for `Gcra.setRate`.
 */

export interface AdaptiveRateOptions {
  /** The configured ceiling: the rate before any throttling, and the most the rate climbs back to. */
  maxRatePerSecond: number;
  /** The floor no decrease goes below. */
  minRatePerSecond: number;
  /** What a decrease multiplies the current rate by; within (0, 1). */
  decreaseFactor: number;
  /** Rate added per second once the quiet period after the last throttle has passed. */
  increasePerSecond: number;
  /** No increase until this long after the last throttle. */
  quietMs: number;
  /**
   * Throttles within this long of the last decrease do not decrease again (they still restart the quiet period).
   * Responses to requests sent before a decrease arrive after it; counting each of them would collapse the rate
   * to the floor on one overload, so, like TCP's once per round trip, one decrease per cooldown.
   */
  decreaseCooldownMs: number;
}

/** The defaults that depend on the ceiling, for a given `maxRatePerSecond`. */
export function defaultAdaptiveRateOptions(maxRatePerSecond: number): AdaptiveRateOptions {
  return {
    maxRatePerSecond,
    // At least 1/s so that the upstream keeps being probed, but never above the ceiling itself.
    minRatePerSecond: Math.min(maxRatePerSecond, Math.max(1, maxRatePerSecond / 100)),
    decreaseFactor: 0.5,
    increasePerSecond: maxRatePerSecond / 10,
    quietMs: 1_000,
    decreaseCooldownMs: 1_000,
  };
}

/**
 * The rate is a function of time since the last throttle: it stays at the decreased value until both `quietMs`
 * after the last throttle and any Retry-After hold have passed, then rises by `increasePerSecond` per second up
 * to the ceiling. `onHealthy` is therefore a no-op: the climb needs no per-response bookkeeping, and a client that
 * is idle after a throttle returns to the configured ceiling, which is the upstream's stated allowance anyway.
 */
export class AdaptiveRate {
  readonly #options: AdaptiveRateOptions;
  /** The rate set by the last throttle (the ceiling before any); the climb starts from it. */
  #base: number;
  #lastThrottleAt: number | undefined;
  #lastDecreaseAt: number | undefined;
  #holdUntil = Number.NEGATIVE_INFINITY;

  /** Defaults: see `defaultAdaptiveRateOptions`; `decreaseCooldownMs` defaults to `quietMs`. */
  constructor(options: Partial<AdaptiveRateOptions> & { maxRatePerSecond: number }) {
    const defaults = defaultAdaptiveRateOptions(options.maxRatePerSecond);
    this.#options = {
      ...defaults,
      ...options,
      decreaseCooldownMs: options.decreaseCooldownMs ?? options.quietMs ?? defaults.decreaseCooldownMs,
    };
    validate(this.#options);
    this.#base = this.#options.maxRatePerSecond;
  }

  /** The rate allowed at `now`, in requests per second. */
  current(now: number): number {
    if (this.#lastThrottleAt === undefined) return this.#base;
    const climbFrom = Math.max(this.#lastThrottleAt + this.#options.quietMs, this.#holdUntil);
    if (now <= climbFrom) return this.#base;
    const climbed = this.#base + (this.#options.increasePerSecond * (now - climbFrom)) / 1000;
    return Math.min(this.#options.maxRatePerSecond, climbed);
  }

  /**
   * The upstream throttled a request: multiply the current rate by `decreaseFactor` (not below the floor), unless
   * within the cooldown of the last decrease. With a Retry-After, the rate also stays where it is until
   * `now + retryAfterMs`.
   */
  onThrottle(now: number, retryAfterMs?: number): void {
    const rate = this.current(now);
    const coolingDown =
      this.#lastDecreaseAt !== undefined && now - this.#lastDecreaseAt < this.#options.decreaseCooldownMs;
    if (coolingDown) {
      // Freeze where the climb had got to: the throttle is not news, but it is not a reason to keep climbing.
      this.#base = rate;
    } else {
      this.#base = Math.max(this.#options.minRatePerSecond, rate * this.#options.decreaseFactor);
      this.#lastDecreaseAt = now;
    }
    this.#lastThrottleAt = now;
    if (retryAfterMs !== undefined) this.#holdUntil = Math.max(this.#holdUntil, now + retryAfterMs);
  }

  /** A response that was not throttled. A no-op by design: the climb is a function of time (see the class). */
  onHealthy(_now: number): void {
    // Nothing to record; kept so that callers report both outcomes and a response-driven climb can replace this.
  }
}

function validate(options: AdaptiveRateOptions): void {
  const {
    maxRatePerSecond,
    minRatePerSecond,
    decreaseFactor,
    increasePerSecond,
    quietMs,
    decreaseCooldownMs,
  } = options;
  if (!(maxRatePerSecond > 0 && Number.isFinite(maxRatePerSecond))) {
    throw new RangeError(`maxRatePerSecond must be a finite positive number, got ${maxRatePerSecond}`);
  }
  if (!(minRatePerSecond > 0 && minRatePerSecond <= maxRatePerSecond)) {
    throw new RangeError(`minRatePerSecond must be within (0, maxRatePerSecond], got ${minRatePerSecond}`);
  }
  if (!(decreaseFactor > 0 && decreaseFactor < 1)) {
    throw new RangeError(`decreaseFactor must be within (0, 1), got ${decreaseFactor}`);
  }
  for (const [name, value] of Object.entries({ increasePerSecond, quietMs, decreaseCooldownMs })) {
    if (!(value >= 0)) throw new RangeError(`${name} must not be negative, got ${value}`);
  }
}
