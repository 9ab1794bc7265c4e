/**
 * A circuit breaker for one target: after enough failures in a row it stops requests for a while, then lets a
 * few probes through to learn whether the target has recovered. Pure and clock-driven.
 */

export const circuitStates = ['closed', 'open', 'half-open'] as const;
export type CircuitState = (typeof circuitStates)[number];

export interface CircuitBreakerOptions {
  /** Failures in a row, while closed, that open the circuit. */
  failureThreshold: number;
  /** How long the circuit stays open before it lets probes through. */
  openMs: number;
  /** Probes in flight at once while half-open. */
  halfOpenProbes: number;
  /** Called on every change of state, for metrics and logs; `now` is the clock reading that caused it. */
  onTransition?: (from: CircuitState, to: CircuitState, now: number) => void;
}

export const defaultCircuitBreakerOptions = {
  failureThreshold: 5,
  openMs: 30_000,
  halfOpenProbes: 1,
} as const satisfies CircuitBreakerOptions;

/**
 * closed → open after `failureThreshold` failures in a row; open → half-open once `openMs` has passed (noticed
 * by whichever method is called first with a later `now`); half-open → closed on a probe's success, → open again
 * (for a fresh `openMs`) on a probe's failure.
 *
 * Every request that `canRequest` allowed and `onRequest` counted must end in `onResult` (a timeout is a
 * failure): a half-open probe that is never reported keeps its slot, and the circuit stays half-open.
 */
export class CircuitBreaker {
  readonly #options: CircuitBreakerOptions;
  #state: CircuitState = 'closed';
  #failures = 0;
  #openedAt = 0;
  #probesInFlight = 0;

  constructor(options: Partial<CircuitBreakerOptions> = {}) {
    this.#options = { ...defaultCircuitBreakerOptions, ...options };
    const { failureThreshold, openMs, halfOpenProbes } = this.#options;
    if (!(failureThreshold >= 1)) {
      throw new RangeError(`failureThreshold must be at least 1, got ${failureThreshold}`);
    }
    if (!(openMs >= 0)) throw new RangeError(`openMs must not be negative, got ${openMs}`);
    if (!(halfOpenProbes >= 1)) {
      throw new RangeError(`halfOpenProbes must be at least 1, got ${halfOpenProbes}`);
    }
  }

  /** Whether a request may be sent now. Asking does not take a probe slot; `onRequest` does. */
  canRequest(now: number): boolean {
    const state = this.state(now);
    switch (state) {
      case 'closed':
        return true;
      case 'open':
        return false;
      case 'half-open':
        return this.#probesInFlight < this.#options.halfOpenProbes;
      default:
        return assertNever(state);
    }
  }

  /** Counts a request that is being sent; while half-open it occupies a probe slot until its result. */
  onRequest(now: number): void {
    if (this.state(now) === 'half-open') this.#probesInFlight++;
  }

  onResult(success: boolean, now: number): void {
    const state = this.state(now);
    switch (state) {
      case 'closed':
        this.#failures = success ? 0 : this.#failures + 1;
        if (this.#failures >= this.#options.failureThreshold) this.#open(now);
        return;
      case 'open':
        // A late result of a request sent before the circuit opened says nothing about the target now.
        return;
      case 'half-open':
        this.#probesInFlight = Math.max(0, this.#probesInFlight - 1);
        if (success) this.#moveTo('closed', now);
        else this.#open(now);
        return;
      default:
        assertNever(state);
    }
  }

  /** When an open circuit lets a probe through; undefined unless open. Asking changes nothing. */
  halfOpensAt(): number | undefined {
    return this.#state === 'open' ? this.#openedAt + this.#options.openMs : undefined;
  }

  /** The state at `now`; an open circuit whose time is up becomes half-open here. */
  state(now: number): CircuitState {
    if (this.#state === 'open' && now - this.#openedAt >= this.#options.openMs)
      this.#moveTo('half-open', now);
    return this.#state;
  }

  #open(now: number): void {
    this.#openedAt = now;
    this.#moveTo('open', now);
  }

  #moveTo(to: CircuitState, now: number): void {
    const from = this.#state;
    this.#state = to;
    // Every state starts from a clean count: failures are counted only while closed, probes only while half-open.
    this.#failures = 0;
    this.#probesInFlight = 0;
    this.#options.onTransition?.(from, to, now);
  }
}

function assertNever(value: never): never {
  throw new Error(`unhandled circuit state: ${String(value)}`);
}
