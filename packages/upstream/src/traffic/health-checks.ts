import { request } from 'undici';
import { tryDeadline } from '../deadline.ts';
import { upstreamUrl } from '../url.ts';
import type { Target } from './types.ts';

export interface HealthCheckSettings {
  path: string;
  intervalMs: number;
  timeoutMs: number;
  healthyThreshold: number;
  unhealthyThreshold: number;
}

interface Tally {
  healthy: boolean;
  successes: number;
  failures: number;
}

/**
 * Active HTTP health checks of an upstream's targets: a GET of the check path on an interval, 2xx healthy. A
 * target turns unhealthy after `unhealthyThreshold` failed checks in a row and healthy again after
 * `healthyThreshold` good ones; `onChange` tells the upstream's state. This is what lets a paused upstream
 * resume on its own once its targets answer again, without spending a queued request on the probe.
 */
export class HealthChecker {
  readonly #settings: HealthCheckSettings;
  readonly #targets: () => Target[];
  readonly #onChange: (targetId: string, healthy: boolean) => void;
  readonly #tallies = new Map<string, Tally>();
  #timer: NodeJS.Timeout | undefined;
  #running = false;

  constructor(
    settings: HealthCheckSettings,
    targets: () => Target[],
    onChange: (targetId: string, healthy: boolean) => void,
  ) {
    this.#settings = settings;
    this.#targets = targets;
    this.#onChange = onChange;
  }

  start(): void {
    this.#timer = setInterval(() => void this.checkOnce(), this.#settings.intervalMs);
    this.#timer.unref();
  }

  /** Checks every target once (the interval calls this; tests call it directly). */
  async checkOnce(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      await Promise.all(this.#targets().map((target) => this.#check(target)));
    } finally {
      this.#running = false;
    }
  }

  async #check(target: Target): Promise<void> {
    let ok = false;
    const deadline = tryDeadline(this.#settings.timeoutMs);
    try {
      const response = await request(upstreamUrl(target.url, this.#settings.path), {
        method: 'GET',
        // tryDeadline is the check's only clock: a stall of this process must not mark a target unhealthy.
        headersTimeout: 0,
        bodyTimeout: 0,
        signal: deadline.signal,
      });
      await response.body.dump();
      ok = response.statusCode >= 200 && response.statusCode < 300;
    } catch {
      ok = false;
    } finally {
      deadline.clear();
    }
    const tally = this.#tallies.get(target.id) ?? { healthy: true, successes: 0, failures: 0 };
    if (ok) {
      tally.successes += 1;
      tally.failures = 0;
    } else {
      tally.failures += 1;
      tally.successes = 0;
    }
    if (tally.healthy && tally.failures >= this.#settings.unhealthyThreshold) {
      tally.healthy = false;
      this.#onChange(target.id, false);
    } else if (!tally.healthy && tally.successes >= this.#settings.healthyThreshold) {
      tally.healthy = true;
      this.#onChange(target.id, true);
    }
    this.#tallies.set(target.id, tally);
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
  }
}
