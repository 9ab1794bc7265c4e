/**
 * Rate limiting with the generic cell rate algorithm (GCRA, virtual scheduling): one number per limited key, the
 * theoretical arrival time (TAT), instead of a token count and a refill timestamp. It is exactly a token bucket
 * of `burst` tokens refilled at `ratePerSecond`, with the bucket's level B − max(0, TAT − now) / T.
 */

export interface GcraOptions {
  /** Sustained rate; the emission interval T is 1000 / ratePerSecond milliseconds. */
  ratePerSecond: number;
  /** Requests (cost units) that may go at once after a quiet period: the bucket's size. At least 1. */
  burst: number;
}

export type GcraResult = { allowed: true } | { allowed: false; waitMs: number };

export interface GcraDecision {
  allowed: boolean;
  /** The TAT to store: advanced when allowed, the given `tat` unchanged when refused. */
  newTat: number;
  /** 0 when allowed; otherwise how long after `now` the same request would be allowed (Infinity: never). */
  waitMs: number;
}

// Floating-point slack: emission intervals such as 1000/3 ms round, and a request arriving exactly on schedule
// must not be refused for a rounding error. 1 µs is far below the resolution of any clock that drives this, so it
// cannot let a meaningful excess through, and it does not accumulate: the TAT still advances by the full c·T.
const toleranceMs = 0.001;

/**
 * One GCRA decision, pure so that the same arithmetic can run in a Redis Lua script. All times in milliseconds:
 *
 * - `tat`: the stored theoretical arrival time; for a key never seen, pass `now`.
 * - `emissionIntervalMs` T = 1000 / ratePerSecond; `burst` B; `cost` c ≥ 0 (units of the rate).
 * - `candidate = max(tat, now) + c·T`; `excess = candidate − now − B·T`.
 * - If c > B: refused for ever (`waitMs` Infinity), since even a full bucket holds only B.
 * - Else if `excess ≤ 0.001` (the tolerance for floating-point rounding): allowed, `newTat = candidate`.
 * - Else: refused, `newTat = tat` (nothing to write), `waitMs = excess`: at `now + excess` the same request is
 *   allowed (TAT is unchanged and still ≥ that time, so `excess` falls to 0), and any earlier it is not.
 *
 * Precision: near epoch milliseconds (1.7e12) a double resolves only 0.24 µs, and a TAT advanced by a fractional T
 * request after request drifts from the caller's clock by a fraction of that each time, until the tolerance is
 * used up and an on-schedule request is refused. Pass times relative to a recent origin (as `Gcra` does, and as a
 * Lua port should, e.g. in integer microseconds since a stored origin) rather than raw epoch milliseconds.
 *
 * Why the bound holds: each allowed request moves TAT to at least its own time plus c·T, and is allowed only if
 * the result is at most its time plus B·T. So k unit requests allowed within [t, t + w) leave TAT ≥ t + k·T and
 * < t + w + B·T (plus the tolerance), hence k ≤ w / T + B = ratePerSecond × w / 1000 + B, for every window.
 */
export function gcraDecision(
  tat: number,
  now: number,
  emissionIntervalMs: number,
  burst: number,
  cost: number,
): GcraDecision {
  if (cost > burst) return { allowed: false, newTat: tat, waitMs: Number.POSITIVE_INFINITY };
  const candidate = Math.max(tat, now) + cost * emissionIntervalMs;
  const excess = candidate - now - burst * emissionIntervalMs;
  if (excess <= toleranceMs) return { allowed: true, newTat: candidate, waitMs: 0 };
  return { allowed: false, newTat: tat, waitMs: excess };
}

/**
 * A GCRA limiter for one key, in process. Refused requests change nothing, so a caller may ask again after
 * `waitMs` or give up. A request whose cost exceeds the burst is never allowed (`waitMs` Infinity).
 */
export class Gcra {
  #ratePerSecond: number;
  readonly #burst: number;
  #emissionIntervalMs: number;
  /** The clock reading that `#tat` is relative to; see `gcraDecision` on precision. */
  #origin = 0;
  /** Relative to `#origin`; undefined while the bucket is full (nothing owed), as for a fresh limiter. */
  #tat: number | undefined;

  constructor(options: GcraOptions) {
    assertRate(options.ratePerSecond);
    if (!(options.burst >= 1 && Number.isFinite(options.burst))) {
      throw new RangeError(`burst must be a finite number of at least 1, got ${options.burst}`);
    }
    this.#ratePerSecond = options.ratePerSecond;
    this.#burst = options.burst;
    this.#emissionIntervalMs = 1000 / options.ratePerSecond;
  }

  get ratePerSecond(): number {
    return this.#ratePerSecond;
  }

  get burst(): number {
    return this.#burst;
  }

  take(now: number, cost = 1): GcraResult {
    const decision = this.#decide(now, cost);
    if (!decision.allowed) return { allowed: false, waitMs: decision.waitMs };
    this.#tat = decision.newTat;
    return { allowed: true };
  }

  /** How long until a request of `cost` would be allowed (0: now), without taking anything. */
  peekWaitMs(now: number, cost = 1): number {
    return this.#decide(now, cost).waitMs;
  }

  /**
   * Changes the rate from `now` on. The debt already taken (TAT − now, in emission intervals) is kept as a number
   * of requests and re-timed at the new rate, so the bucket's level is the same just before and after: the bound
   * then holds with the rate integrated over any window, and lowering the rate also slows repayment of a burst
   * already sent.
   */
  setRate(ratePerSecond: number, now: number): void {
    assertRate(ratePerSecond);
    const emissionIntervalMs = 1000 / ratePerSecond;
    const relativeNow = this.#relative(now);
    if (this.#tat !== undefined) {
      const owed = (this.#tat - relativeNow) / this.#emissionIntervalMs;
      this.#tat = relativeNow + owed * emissionIntervalMs;
    }
    this.#ratePerSecond = ratePerSecond;
    this.#emissionIntervalMs = emissionIntervalMs;
  }

  #decide(now: number, cost: number): GcraDecision {
    if (!(cost >= 0 && Number.isFinite(cost))) {
      throw new RangeError(`cost must be a finite number ≥ 0, got ${cost}`);
    }
    const relativeNow = this.#relative(now);
    return gcraDecision(this.#tat ?? relativeNow, relativeNow, this.#emissionIntervalMs, this.#burst, cost);
  }

  /**
   * `now` relative to the origin, moving the origin to `now` whenever the bucket is full: the state is then just
   * "full", so nothing is lost, and the TAT stays a small number with sub-nanosecond resolution.
   */
  #relative(now: number): number {
    if (this.#tat === undefined || this.#tat <= now - this.#origin) {
      this.#origin = now;
      this.#tat = undefined;
    }
    return now - this.#origin;
  }
}

function assertRate(ratePerSecond: number): void {
  if (!(ratePerSecond > 0 && Number.isFinite(ratePerSecond))) {
    throw new RangeError(`ratePerSecond must be a finite positive number, got ${ratePerSecond}`);
  }
}
