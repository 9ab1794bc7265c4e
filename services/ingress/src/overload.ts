/**
 * Shedding by what this process can do now. Past its capacity, an HTTP server that takes every request queues
 * them: in its own event loop, in the producer waiting for the broker, in the kernel's accept queue and in the
 * clients' connection pools. Each waits behind all the others, latency grows until clients give up, and the work
 * done for them is wasted. Two readings refuse new submissions at the top of the HTTP handling (before parsing,
 * authentication or a store round trip, so that a refusal costs far less than an acceptance):
 * - submissions in flight in this replica (received, not yet answered) at their bound: by Little's law the
 *   latency of the ones admitted is at most that bound divided by the rate the replica completes them, and a
 *   client whose pool is full gets quick refusals instead of queueing behind slow acceptances;
 * - the event loop's delay (how late a timer fires): while it is above its bound, a growing share is refused.
 */

import { preferredWaitSeconds } from './prefer.ts';

/** How often the delay is read and the refused share adjusted. */
export const overloadWindowMs = 100;

/** How many windows in a row the loop must run late before anything is refused. */
const persistentWindows = 3;

/** The most that is ever refused: a trickle still gets in, so recovery shows without a probe. */
const maxRefusedShare = 0.98;

/**
 * The next share of submissions to refuse (PIE-style, RFC 8033: integral on the delay above the bound plus a
 * term on its trend). It rises quickly while the delay is well above the bound, falls while the delay is below
 * it, and stays where it is while the delay sits at the bound: the share that holds the loop there.
 */
export function nextRefusedShare(
  share: number,
  delayMs: number,
  previousDelayMs: number,
  boundMs: number,
): number {
  const above = (delayMs - boundMs) / boundMs;
  const trend = (delayMs - previousDelayMs) / boundMs;
  // Below the bound the share decays by at least 2% of its value a window, so that it reaches 0 when calm.
  const decay = delayMs < boundMs ? 0.02 * share : 0;
  const next = share + 0.1 * Math.min(above, 4) + 0.1 * Math.max(-1, Math.min(trend, 4)) - decay;
  if (next < 0.005) return 0;
  return Math.min(maxRefusedShare, next);
}

/**
 * Whether an HTTP request is a submission that the shedder may refuse: new work, not lookups or health. One that
 * holds its connection for the result (Prefer: wait) is not: it is in flight for as long as the pipeline and
 * the upstream take, which says nothing of this replica, and the queue's own bounds cover it.
 */
export function isSheddable(method: string | undefined, url: string | undefined, prefer?: string): boolean {
  if (url === undefined) return false;
  // The same reading of the header as the handlers': an unreadable one is refused by them (400) anyway.
  const wait = preferredWaitSeconds(prefer);
  if (typeof wait === 'number' && wait > 0) return false;
  if (url.startsWith('/r/')) return true;
  if (method !== 'POST') return false;
  const path = url.split('?', 1)[0];
  return path === '/v1/requests' || path === '/v1/batches';
}

export interface OverloadOptions {
  /** The event-loop delay above which submissions start being refused; read at every window. */
  boundMs: () => number;
  /** Submissions this replica handles at once; a new one beyond it is refused. Read at every submission. */
  maxInFlight?: () => number;
  now?: () => number;
  random?: () => number;
}

/**
 * Measures the event loop's delay as the lateness of a repeating timer (the delay a request arriving now
 * would see before its first line of code runs) and keeps the share of submissions to refuse.
 */
export class OverloadShedder {
  readonly #boundMs: () => number;
  readonly #maxInFlight: () => number;
  #inFlight = 0;
  readonly #now: () => number;
  readonly #random: () => number;
  #share = 0;
  #delayMs = 0;
  /** The last few windows' lateness, newest last; on time before the first. */
  readonly #recent: number[] = new Array(persistentWindows).fill(0);
  #expectedAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #refused = 0;

  constructor(options: OverloadOptions) {
    this.#boundMs = options.boundMs;
    this.#maxInFlight = options.maxInFlight ?? (() => Number.POSITIVE_INFINITY);
    this.#now = options.now ?? (() => performance.now());
    this.#random = options.random ?? Math.random;
  }

  start(): void {
    this.#expectedAt = this.#now() + overloadWindowMs;
    this.#timer = setInterval(() => this.observe(this.#now() - this.#expectedAt), overloadWindowMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
  }

  /**
   * One window's reading: how late its timer fired. The delay acted on is the least of the last three windows',
   * so that one pause (a garbage collection, a large JSON body) refuses nothing and a loop that runs late window
   * after window does. Public so that tests can drive it without a clock.
   */
  observe(lateMs: number): void {
    this.#recent.push(Math.max(0, lateMs));
    if (this.#recent.length > persistentWindows) this.#recent.shift();
    const delay = Math.min(...this.#recent);
    this.#share = nextRefusedShare(this.#share, delay, this.#delayMs, this.#boundMs());
    this.#delayMs = delay;
    this.#expectedAt = this.#now() + overloadWindowMs;
  }

  /**
   * Whether the submission arriving now goes on (undefined; `done` must then be called once, when its answer is
   * sent) or why it is refused.
   */
  admit(): string | undefined {
    const limit = this.#maxInFlight();
    let refusal: string | undefined;
    if (this.#inFlight >= limit) {
      refusal = `this replica is handling ${this.#inFlight} submissions, its most at once`;
    } else if (this.#share > 0 && this.#random() < this.#share) {
      refusal = `this replica's event loop runs ${Math.round(this.#delayMs)} ms late`;
    }
    if (refusal !== undefined) {
      this.#refused += 1;
      return refusal;
    }
    this.#inFlight += 1;
    return undefined;
  }

  /** An admitted submission was answered (or its connection closed). */
  done(): void {
    this.#inFlight = Math.max(0, this.#inFlight - 1);
  }

  /** The last window's delay, the share refused now, submissions in flight and refusals so far, for metrics. */
  get state(): { delayMs: number; refusedShare: number; inFlight: number; refused: number } {
    return {
      delayMs: this.#delayMs,
      refusedShare: this.#share,
      inFlight: this.#inFlight,
      refused: this.#refused,
    };
  }
}
