import { type Lane, lanes } from './types.ts';

/** Shares of dispatches guaranteed to each lane while it has waiting work: low is never starved by high. */
export const defaultMinShare = { high: 0, normal: 0.2, low: 0.1 } as const satisfies Record<Lane, number>;

export interface LaneSchedulerOptions {
  /** Fractions of dispatch slots guaranteed to a lane while it has waiting work; each in [0, 1], summing to ≤ 1. */
  minShare: Record<Lane, number>;
}

// Credits are kept in millionths of a slot, so that they add up exactly: ten 0.1s as floats make
// 0.9999999999999999, and whether a lane is owed a slot, or which of two lanes is owed more, must not hang on that.
const slot = 1_000_000;

/**
 * Strict priority with guaranteed minimum shares, by deficit counters. For each slot, every lane with waiting
 * work earns its `minShare` in credit; a lane that has no waiting work loses its credit, since the guarantee
 * holds only while work waits and banked credit would let an idle lane later take a run of slots. A lane whose
 * credit has reached one slot gets the slot (the most credit first, then the higher lane); otherwise the highest
 * lane with waiting work does. The granted lane pays one slot of credit, never going below zero, so service it got
 * by priority is not held against its guarantee later. While saturated, each lane thus gets its share within a
 * slot or two, spread evenly (low with 0.1 gets about every tenth slot) rather than in catch-up runs.
 *
 * `next` records the grant itself: each call is one dispatch slot, so call it only when a slot is free, and
 * dispatch from the lane it returns.
 */
export class LaneScheduler {
  /** In millionths of a slot. */
  readonly #minShare: Record<Lane, number>;
  readonly #credit: Record<Lane, number> = { high: 0, normal: 0, low: 0 };
  readonly #served: Record<Lane, number> = { high: 0, normal: 0, low: 0 };

  constructor(options: Partial<LaneSchedulerOptions> = {}) {
    const minShare = options.minShare ?? defaultMinShare;
    this.#minShare = { high: 0, normal: 0, low: 0 };
    for (const lane of lanes) {
      const share = minShare[lane];
      if (!(share >= 0 && share <= 1)) {
        throw new RangeError(`minShare.${lane} must be within [0, 1], got ${share}`);
      }
      this.#minShare[lane] = Math.round(share * slot);
    }
    const total = this.#minShare.high + this.#minShare.normal + this.#minShare.low;
    if (total > slot) throw new RangeError(`minShare must sum to at most 1, got ${total / slot}`);
  }

  /** Grants the next dispatch slot to a lane with waiting work, or returns undefined when none has any. */
  next(waiting: Record<Lane, number>): Lane | undefined {
    let owed: Lane | undefined;
    let first: Lane | undefined;
    for (const lane of lanes) {
      if (!(waiting[lane] > 0)) {
        this.#credit[lane] = 0;
        continue;
      }
      first ??= lane;
      this.#credit[lane] += this.#minShare[lane];
      // Strictly more credit to displace: on a tie the higher lane, seen first, keeps the slot.
      if (this.#credit[lane] >= slot && (owed === undefined || this.#credit[lane] > this.#credit[owed])) {
        owed = lane;
      }
    }
    const granted = owed ?? first;
    if (granted === undefined) return undefined;
    this.#credit[granted] = Math.max(0, this.#credit[granted] - slot);
    this.#served[granted]++;
    return granted;
  }

  /** Slots granted to each lane since the scheduler was made. */
  served(): Record<Lane, number> {
    return { ...this.#served };
  }
}
