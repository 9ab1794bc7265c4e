import type { RateLimitDecision, RateLimitRule } from './types.ts';

// Rounding slack for emission intervals such as 1000/3 ms; far below any clock that drives this.
const toleranceMs = 0.001;

/**
 * One GCRA decision (virtual scheduling, as in @sluice/upstream's limiter), with the RateLimit header values.
 * `tat` is the stored theoretical arrival time (pass `now` for a key never seen); `newTat` is what to store,
 * unchanged when refused. Times in milliseconds relative to any origin close to `now`, for precision. The Redis
 * store runs the same arithmetic in Lua; this is the reference its tests compare with.
 */
export function rateLimitDecision(
  tat: number,
  now: number,
  rule: RateLimitRule,
  cost: number,
): RateLimitDecision & { newTat: number } {
  const interval = 1000 / rule.ratePerSecond;
  const base = Math.max(tat, now);
  const header = (storedTat: number) => {
    const owed = Math.max(0, storedTat - now);
    return {
      limit: rule.burst,
      remaining: Math.max(0, Math.floor((rule.burst * interval - owed + toleranceMs) / interval)),
      resetMs: Math.ceil(owed),
    };
  };
  if (cost > rule.burst) {
    return { allowed: false, newTat: tat, retryAfterMs: Number.POSITIVE_INFINITY, ...header(tat) };
  }
  const candidate = base + cost * interval;
  const excess = candidate - now - rule.burst * interval;
  if (excess <= toleranceMs)
    return { allowed: true, newTat: candidate, retryAfterMs: 0, ...header(candidate) };
  return { allowed: false, newTat: tat, retryAfterMs: excess, ...header(tat) };
}
