import { describe, expect, it } from 'vitest';
import { Gcra, gcraDecision } from '../src/traffic/gcra.ts';

const start = 1_700_000_000_000;

/** mulberry32: a small seeded PRNG, so that every run checks the same streams. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

interface RateChange {
  at: number;
  ratePerSecond: number;
}

/** Requests the rate schedule allows over [from, to): the rate integrated over time. */
function allowance(schedule: readonly RateChange[], from: number, to: number): number {
  let total = 0;
  schedule.forEach((change, i) => {
    const end = schedule[i + 1]?.at ?? Number.POSITIVE_INFINITY;
    const overlap = Math.min(to, end) - Math.max(from, change.at);
    if (overlap > 0) total += (change.ratePerSecond * overlap) / 1000;
  });
  return total;
}

/** The first index whose time is ≥ `time` (or > `time` when `strict`). */
function firstIndex(times: readonly number[], time: number, strict = false): number {
  let low = 0;
  let high = times.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    const value = times[middle] ?? Number.POSITIVE_INFINITY;
    if (value < time || (strict && value === time)) low = middle + 1;
    else high = middle;
  }
  return low;
}

/**
 * Checks allowed ≤ ∫rate + burst over EVERY window of each width. The count minus the bound, as a function of
 * the window's start t, changes only where t or t + w meets an allowed time or a rate change, and is linear in
 * between; so its supremum is reached at those points: windows [a, a + w) starting at an allowed time a, windows
 * (a − w, a] ending at one (the limit of windows that just take a in), and windows starting or ending at a change.
 */
function expectEveryWindowBounded(
  allowed: readonly number[],
  schedule: readonly RateChange[],
  burst: number,
  widths: readonly number[],
): void {
  const changes = schedule.map((change) => change.at).filter(Number.isFinite);
  for (const width of widths) {
    const closedOpen = (from: number) => firstIndex(allowed, from + width) - firstIndex(allowed, from);
    const openClosed = (to: number) => firstIndex(allowed, to, true) - firstIndex(allowed, to - width, true);
    for (const time of allowed) {
      const startingHere = closedOpen(time);
      const endingHere = openClosed(time);
      if (startingHere > allowance(schedule, time, time + width) + burst + 1e-6) {
        throw new Error(`${startingHere} allowed in [${time}, +${width}) at burst ${burst}`);
      }
      if (endingHere > allowance(schedule, time - width, time) + burst + 1e-6) {
        throw new Error(`${endingHere} allowed in (${time - width}, ${time}] at burst ${burst}`);
      }
    }
    for (const change of changes) {
      for (const from of [change, change - width]) {
        const bound = allowance(schedule, from, from + width) + burst + 1e-6;
        expect(closedOpen(from)).toBeLessThanOrEqual(bound);
        expect(openClosed(from + width)).toBeLessThanOrEqual(bound);
      }
    }
  }
}

/**
 * A plain token bucket to compare against: `burst` tokens, refilled at the rate, with the same 1 µs slack for
 * floating-point rounding that the GCRA has. GCRA must make the same decision for every attempt.
 */
class ReferenceBucket {
  readonly #burst: number;
  #tokens: number;
  #last: number;
  #intervalMs: number;

  constructor(ratePerSecond: number, burst: number, now: number) {
    this.#burst = burst;
    this.#tokens = burst;
    this.#last = now;
    this.#intervalMs = 1000 / ratePerSecond;
  }

  take(now: number): boolean {
    this.#refill(now);
    if (this.#tokens < 1 - 0.001 / this.#intervalMs) return false;
    this.#tokens -= 1;
    return true;
  }

  setRate(ratePerSecond: number, now: number): void {
    this.#refill(now);
    this.#intervalMs = 1000 / ratePerSecond;
  }

  #refill(now: number): void {
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#last) / this.#intervalMs);
    this.#last = now;
  }
}

interface Scenario {
  seed: number;
  ratePerSecond: number;
  burst: number;
  attempts: number;
  /** Chance, per attempt, that the rate changes to a random value in [rate / 4, rate × 4]. */
  rateChangeChance?: number;
}

/**
 * Attempts at random times, taking whenever allowed: mostly faster than the rate, with occasional quiet gaps
 * long enough to refill the bucket, so that both bursts and the sustained rate are exercised.
 */
function simulate({ seed, ratePerSecond, burst, attempts, rateChangeChance = 0 }: Scenario) {
  const random = seeded(seed);
  const limiter = new Gcra({ ratePerSecond, burst });
  const reference = new ReferenceBucket(ratePerSecond, burst, start);
  const schedule: RateChange[] = [{ at: Number.NEGATIVE_INFINITY, ratePerSecond }];
  const allowed: number[] = [];
  let now = start;
  let disagreements = 0;
  for (let i = 0; i < attempts; i++) {
    const intervalMs = 1000 / limiter.ratePerSecond;
    now += random() < 0.02 ? random() * 2 * burst * intervalMs : random() * 0.6 * intervalMs;
    if (random() < rateChangeChance) {
      const rate = ratePerSecond * 4 ** (random() * 2 - 1);
      limiter.setRate(rate, now);
      reference.setRate(rate, now);
      schedule.push({ at: now, ratePerSecond: rate });
    }
    const taken = limiter.take(now).allowed;
    if (taken !== reference.take(now)) disagreements++;
    if (taken) allowed.push(now);
  }
  return { allowed, schedule, disagreements, end: now };
}

describe('gcraDecision', () => {
  it('allows while the new TAT stays within burst × T of now, and says exactly how long to wait', () => {
    expect(gcraDecision(1_000, 1_000, 100, 5, 1)).toEqual({ allowed: true, newTat: 1_100, waitMs: 0 });
    // A TAT in the past counts from now: the bucket is full, not fuller.
    expect(gcraDecision(0, 1_000, 100, 5, 1)).toEqual({ allowed: true, newTat: 1_100, waitMs: 0 });
    expect(gcraDecision(1_400, 1_000, 100, 5, 1)).toEqual({ allowed: true, newTat: 1_500, waitMs: 0 });
    expect(gcraDecision(1_500, 1_000, 100, 5, 1)).toEqual({ allowed: false, newTat: 1_500, waitMs: 100 });
    expect(gcraDecision(1_000, 1_000, 100, 5, 5)).toEqual({ allowed: true, newTat: 1_500, waitMs: 0 });
    expect(gcraDecision(1_100, 1_000, 100, 5, 5)).toEqual({ allowed: false, newTat: 1_100, waitMs: 100 });
  });

  it('never allows a cost above the burst', () => {
    expect(gcraDecision(0, 1_000, 100, 5, 6)).toEqual({
      allowed: false,
      newTat: 0,
      waitMs: Number.POSITIVE_INFINITY,
    });
  });

  it('gives a wait after which the same request is allowed, and a moment before which it is not', () => {
    const random = seeded(7);
    let checked = 0;
    for (let i = 0; i < 2_000; i++) {
      const intervalMs = 1 + random() * 999;
      const burst = 1 + random() * 20;
      const cost = random() * burst;
      const now = start + random() * 1e6;
      const tat = now + (random() * 2 - 0.5) * burst * intervalMs;
      const decision = gcraDecision(tat, now, intervalMs, burst, cost);
      if (decision.allowed) continue;
      checked++;
      expect(gcraDecision(tat, now + decision.waitMs, intervalMs, burst, cost).allowed).toBe(true);
      expect(gcraDecision(tat, now + decision.waitMs - 0.01, intervalMs, burst, cost).allowed).toBe(false);
    }
    expect(checked).toBeGreaterThan(100);
  });
});

describe('Gcra', () => {
  it('allows a full burst at once, then one request per emission interval', () => {
    const limiter = new Gcra({ ratePerSecond: 10, burst: 5 });
    for (let i = 0; i < 5; i++) expect(limiter.take(start)).toEqual({ allowed: true });
    expect(limiter.take(start)).toEqual({ allowed: false, waitMs: 100 });
    expect(limiter.take(start + 99).allowed).toBe(false);
    expect(limiter.take(start + 100).allowed).toBe(true);
    expect(limiter.take(start + 100).allowed).toBe(false);
    // A long pause refills the bucket to the burst, never beyond.
    for (let i = 0; i < 5; i++) expect(limiter.take(start + 60_000).allowed).toBe(true);
    expect(limiter.take(start + 60_000).allowed).toBe(false);
  });

  it('reports an exact waitMs: taking after it succeeds, a moment before fails', () => {
    const limiter = new Gcra({ ratePerSecond: 3, burst: 2 });
    expect(limiter.take(start).allowed).toBe(true);
    expect(limiter.take(start).allowed).toBe(true);
    const refused = limiter.take(start + 10);
    if (refused.allowed) throw new Error('expected a refusal');
    expect(refused.waitMs).toBeCloseTo(1000 / 3 - 10, 6);
    expect(limiter.peekWaitMs(start + 10)).toBe(refused.waitMs);
    const retryAt = start + 10 + refused.waitMs;
    expect(limiter.take(retryAt - 0.01).allowed).toBe(false);
    expect(limiter.peekWaitMs(retryAt)).toBe(0);
    expect(limiter.take(retryAt).allowed).toBe(true);
  });

  it('charges a cost in units of the rate', () => {
    const limiter = new Gcra({ ratePerSecond: 10, burst: 5 });
    expect(limiter.take(start, 3).allowed).toBe(true);
    expect(limiter.take(start, 3)).toEqual({ allowed: false, waitMs: 100 });
    expect(limiter.take(start, 2).allowed).toBe(true);
    expect(limiter.peekWaitMs(start, 6)).toBe(Number.POSITIVE_INFINITY);
    expect(limiter.peekWaitMs(start, 0)).toBe(0);
  });

  it('allows a steady stream exactly at the rate, even with a burst of 1 and a fractional interval', () => {
    for (const ratePerSecond of [3, 7, 1000 / 3, 250]) {
      const limiter = new Gcra({ ratePerSecond, burst: 1 });
      const intervalMs = 1000 / ratePerSecond;
      for (let i = 0; i < 10_000; i++) {
        const now = start + i * intervalMs;
        if (!limiter.take(now).allowed) throw new Error(`refused #${i} at ${ratePerSecond}/s`);
      }
    }
  });

  it('refuses a stream only slightly faster than the rate, as often as the bound requires', () => {
    const limiter = new Gcra({ ratePerSecond: 3, burst: 2 });
    const intervalMs = 1000 / 3 - 1;
    let refused = 0;
    for (let i = 0; i < 1_000; i++) if (!limiter.take(start + i * intervalMs).allowed) refused++;
    // 1 ms early each time uses up the one spare request of the burst every ~333 attempts: over 999 gaps
    // (332 s) the bound allows floor(3 × 332.0 + 2) = 998 requests.
    const bound = Math.floor((3 * 999 * intervalMs) / 1000 + 2);
    expect(1_000 - refused).toBe(bound);
  });

  it('gives a stream much faster than the rate exactly the rate plus the burst', () => {
    const limiter = new Gcra({ ratePerSecond: 50, burst: 10 });
    let allowed = 0;
    for (let i = 0; i < 20_000; i++) if (limiter.take(start + i * 5).allowed) allowed++;
    // Exactly the bound: the burst plus 50/s over the 99.995 s from the first attempt to the last.
    expect(allowed).toBe(Math.floor(10 + (50 * 99_995) / 1000));
  });

  const scenarios: Scenario[] = [
    { seed: 1, ratePerSecond: 10, burst: 1, attempts: 20_000 },
    { seed: 2, ratePerSecond: 3, burst: 5, attempts: 20_000 },
    { seed: 3, ratePerSecond: 100, burst: 20, attempts: 20_000 },
    { seed: 4, ratePerSecond: 7.5, burst: 2.5, attempts: 20_000 },
  ];

  it.each(scenarios)(
    'allows at most R·w/1000 + B in every window (seed $seed, $ratePerSecond/s, burst $burst)',
    (scenario) => {
      const { allowed, schedule, disagreements, end } = simulate(scenario);
      expect(disagreements).toBe(0);
      expectEveryWindowBounded(allowed, schedule, scenario.burst, [1, 50, 1_000, 2_500, 10_000]);
      // Not trivially satisfied: demand exceeds the rate, so most of the allowance is used.
      expect(allowed.length).toBeGreaterThan(0.6 * allowance(schedule, start, end));
    },
  );

  it.each([
    { seed: 11, ratePerSecond: 10, burst: 1, attempts: 20_000, rateChangeChance: 0.01 },
    { seed: 12, ratePerSecond: 40, burst: 8, attempts: 20_000, rateChangeChance: 0.02 },
    { seed: 13, ratePerSecond: 3, burst: 3, attempts: 10_000, rateChangeChance: 0.05 },
  ])('keeps the bound, with the rate integrated, across setRate (seed $seed)', (scenario) => {
    const { allowed, schedule, disagreements } = simulate(scenario);
    expect(schedule.length).toBeGreaterThan(50);
    expect(disagreements).toBe(0);
    expectEveryWindowBounded(allowed, schedule, scenario.burst, [1, 50, 1_000, 2_500, 10_000]);
  });

  it('re-times the debt already taken when the rate changes', () => {
    const slower = new Gcra({ ratePerSecond: 10, burst: 10 });
    for (let i = 0; i < 10; i++) slower.take(start);
    slower.setRate(5, start);
    expect(slower.ratePerSecond).toBe(5);
    expect(slower.peekWaitMs(start)).toBe(200);

    const faster = new Gcra({ ratePerSecond: 10, burst: 10 });
    for (let i = 0; i < 10; i++) faster.take(start);
    expect(faster.take(start + 100).allowed).toBe(true);
    expect(faster.peekWaitMs(start + 100)).toBe(100);
    // All 10 requests of the burst are owed at 100 ms; at 50 ms each the next one is free 50 ms later.
    faster.setRate(20, start + 100);
    expect(faster.peekWaitMs(start + 100)).toBe(50);

    const fresh = new Gcra({ ratePerSecond: 1, burst: 2 });
    fresh.setRate(1_000, start);
    expect(fresh.take(start).allowed).toBe(true);
    expect(fresh.take(start).allowed).toBe(true);
    expect(fresh.take(start)).toEqual({ allowed: false, waitMs: 1 });
  });

  it('rejects a rate, burst or cost that makes no sense', () => {
    expect(() => new Gcra({ ratePerSecond: 0, burst: 1 })).toThrow(RangeError);
    expect(() => new Gcra({ ratePerSecond: 10, burst: 0.5 })).toThrow(RangeError);
    expect(() => new Gcra({ ratePerSecond: Number.POSITIVE_INFINITY, burst: 1 })).toThrow(RangeError);
    const limiter = new Gcra({ ratePerSecond: 10, burst: 1 });
    expect(() => limiter.take(start, -1)).toThrow(RangeError);
    expect(() => limiter.setRate(-5, start)).toThrow(RangeError);
  });
});
