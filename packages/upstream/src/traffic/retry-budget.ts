/**
 * A retry budget after Envoy's: retries in flight toward one upstream are limited to a share of the requests in
 * flight, so that when the upstream fails broadly, retries cannot multiply its load (a retry storm).
 */

export interface RetryBudgetOptions {
  /** Retries in flight allowed, as a percentage of all requests in flight (retries included). */
  percent: number;
  /** Retries in flight always allowed, so that an upstream with little traffic can still be retried. */
  minRetries: number;
}

export const defaultRetryBudgetOptions = { percent: 20, minRetries: 3 } as const satisfies RetryBudgetOptions;

export interface RetryBudgetSnapshot {
  /** Requests in flight, retries included. */
  active: number;
  /** Retries in flight. */
  retries: number;
  /** Retries in flight the budget allows at this moment. */
  limit: number;
}

/**
 * Counts the requests and retries in flight of one upstream. A retry may start while retries in flight are
 * fewer than max(minRetries, floor(active × percent / 100)). Because a retry is itself active once begun, a
 * greedy retrier settles slightly above `percent` of the original requests (24 retries on 100 originals at 20%),
 * as in Envoy, where active requests include retries too.
 */
export class RetryBudget {
  readonly #options: RetryBudgetOptions;
  #active = 0;
  #retries = 0;

  constructor(options: Partial<RetryBudgetOptions> = {}) {
    this.#options = { ...defaultRetryBudgetOptions, ...options };
    const { percent, minRetries } = this.#options;
    if (!(percent >= 0 && percent <= 100)) {
      throw new RangeError(`percent must be within [0, 100], got ${percent}`);
    }
    if (!(minRetries >= 0)) throw new RangeError(`minRetries must not be negative, got ${minRetries}`);
  }

  /** A request (or, with `isRetry`, a retry) starts. Call `canRetry` before beginning a retry. */
  begin(isRetry: boolean): void {
    this.#active++;
    if (isRetry) this.#retries++;
  }

  /** A request begun with the same `isRetry` finished, whatever its outcome. */
  end(isRetry: boolean): void {
    // Clamped rather than thrown: an unbalanced end is a caller bug, and a throw from a finally block would turn it
    // into a failed request.
    this.#active = Math.max(0, this.#active - 1);
    if (isRetry) this.#retries = Math.max(0, this.#retries - 1);
  }

  canRetry(): boolean {
    return this.#retries < this.#limit();
  }

  snapshot(): RetryBudgetSnapshot {
    return { active: this.#active, retries: this.#retries, limit: this.#limit() };
  }

  #limit(): number {
    return Math.max(this.#options.minRetries, Math.floor((this.#active * this.#options.percent) / 100));
  }
}
