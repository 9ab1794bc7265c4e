import type { UpstreamCall, UpstreamClient } from '../client.ts';
import { classify, retryAfterMs, type UpstreamOutcome } from '../outcome.ts';
import { Gcra } from './gcra.ts';
import { HealthChecker, type HealthCheckSettings } from './health-checks.ts';
import { LaneScheduler } from './lanes.ts';
import type { PartitionPauser, PartitionRef } from './partition-pauser.ts';
import { type Lane, lanes, type Target } from './types.ts';
import { type TryReport, type UpstreamSettings, UpstreamState, type WaitReason } from './upstream-state.ts';

/** What the dispatcher needs of a route's configuration (structurally the gateway file's route). */
export interface RouteTraffic {
  upstream: UpstreamSettings & {
    tenantQuotas?: Record<string, { requestsPerSecond: number; burst: number }> | undefined;
    healthCheck?: HealthCheckSettings | undefined;
  };
  concurrency: number;
}

export interface DispatchRequest {
  route: string;
  tenant: string;
  lane: Lane;
  hashKey?: string | undefined;
  /** A try after a failed one: it counts against the upstream's retry budget. */
  isRetry: boolean;
  /** The partition the request was read from: held (paused) while its upstream has no room. */
  source?: PartitionRef | undefined;
  /** Builds the HTTP call toward the chosen target. */
  call(target: Target): UpstreamCall;
}

export interface DispatcherOptions {
  client: UpstreamClient;
  route(name: string): RouteTraffic | undefined;
  minShare: Record<Lane, number>;
  locality?: { region?: string | undefined; zone?: string | undefined } | undefined;
  pauser?: PartitionPauser | undefined;
  /** Requests waiting for one upstream beyond which the partitions feeding it are paused. */
  backlogLimit: number;
  now?: () => number;
  random?: () => number;
  onWait?(route: string, reason: WaitReason | 'tenant-quota'): void;
  onCircuitTransition?(route: string, targetId: string, from: string, to: string): void;
  onEjection?(route: string, targetId: string): void;
  /**
   * A try was admitted toward `target` at `at` (the clock reading the decision was made with). The try's call is
   * built later, once its caller runs again; this is when the shaping decided.
   */
  onAdmit?(route: string, target: Target, at: number): void;
}

interface Waiter {
  request: DispatchRequest;
  resolve(target: Target): void;
  reject(reason: unknown): void;
}

/**
 * Shapes the traffic toward upstreams. Every try asks its upstream's state for admission; while an upstream
 * has no room (rate, concurrency, retry budget) or no healthy target, tries wait in its queue — per lane and per
 * tenant — instead of failing, and the partitions feeding a full or failing upstream are paused so that
 * consumption slows rather than memory growing. Higher lanes go first, lower lanes keep their minimum share, and
 * tenants of a lane take turns (with their own quotas where configured).
 */
export class Dispatcher {
  readonly #options: DispatcherOptions;
  readonly #now: () => number;
  readonly #upstreams = new Map<string, RouteQueue>();

  constructor(options: DispatcherOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** Waits for admission, calls the upstream and reports the outcome to its health and shaping state. */
  async send(
    request: DispatchRequest,
    signal: AbortSignal,
  ): Promise<{ outcome: UpstreamOutcome; target: Target }> {
    const queue = this.#queue(request.route);
    const target = await queue.admit(request, signal);
    const call = request.call(target);
    let outcome: UpstreamOutcome | undefined;
    try {
      outcome = await this.#options.client.call({ ...call, signal });
      return { outcome, target };
    } finally {
      queue.finished(target, request.isRetry, reportOf(outcome, this.#now()));
    }
  }

  /** The upstream state of a route, for health checks, direct proxying and metrics. */
  upstream(route: string): UpstreamState {
    return this.#queue(route).state;
  }

  /** Routes with state, and how many tries wait for each. */
  backlog(): Record<string, number> {
    return Object.fromEntries([...this.#upstreams].map(([route, queue]) => [route, queue.waiting]));
  }

  /** Creates the state of these routes now, so that their health checks run before the first request. */
  warm(routes: string[]): void {
    for (const route of routes) this.#queue(route);
  }

  /** Applies a changed gateway configuration to every upstream it still has. */
  reconfigure(): void {
    for (const [route, queue] of this.#upstreams) {
      const config = this.#options.route(route);
      if (config === undefined) {
        queue.close();
        this.#upstreams.delete(route);
      } else {
        queue.reconfigure(config);
      }
    }
  }

  close(): void {
    for (const queue of this.#upstreams.values()) queue.close();
  }

  #queue(route: string): RouteQueue {
    let queue = this.#upstreams.get(route);
    if (queue === undefined) {
      const config = this.#options.route(route);
      if (config === undefined) throw new Error(`route "${route}" is not configured`);
      queue = new RouteQueue(route, config, this.#options, this.#now);
      this.#upstreams.set(route, queue);
    }
    return queue;
  }
}

/** The waiting tries of one route, by lane and tenant, and the pump that admits them. */
class RouteQueue {
  readonly state: UpstreamState;
  readonly #route: string;
  readonly #options: DispatcherOptions;
  readonly #now: () => number;
  readonly #lanes: LaneScheduler;
  /** lane → tenant → waiters in arrival order. Map order gives the tenants' turns. */
  readonly #waiting = new Map<Lane, Map<string, Waiter[]>>(lanes.map((lane) => [lane, new Map()]));
  readonly #tenantRates = new Map<string, Gcra>();
  #config: RouteTraffic;
  #count = 0;
  #timer: NodeJS.Timeout | undefined;
  #held = false;
  #checker: HealthChecker | undefined;

  constructor(route: string, config: RouteTraffic, options: DispatcherOptions, now: () => number) {
    this.#route = route;
    this.#config = config;
    this.#options = options;
    this.#now = now;
    this.#lanes = new LaneScheduler({ minShare: options.minShare });
    this.state = new UpstreamState(config.upstream, {
      locality: options.locality,
      concurrencyPerTarget: config.concurrency,
      ...(options.random ? { random: options.random } : {}),
      onCircuitTransition: (target, from, to) => options.onCircuitTransition?.(route, target, from, to),
      onEjection: (target) => options.onEjection?.(route, target),
    });
    this.#startChecks(config);
  }

  #startChecks(config: RouteTraffic): void {
    this.#checker?.stop();
    this.#checker = undefined;
    const settings = config.upstream.healthCheck;
    if (settings === undefined) return;
    this.#checker = new HealthChecker(
      settings,
      () => this.state.targets,
      (targetId, healthy) => {
        this.state.markChecked(targetId, healthy);
        this.#pump();
      },
    );
    this.#checker.start();
  }

  close(): void {
    this.#checker?.stop();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
  }

  get waiting(): number {
    return this.#count;
  }

  reconfigure(config: RouteTraffic): void {
    this.#config = config;
    this.state.reconfigure(config.upstream);
    this.#tenantRates.clear();
    this.#startChecks(config);
    this.#pump();
  }

  admit(request: DispatchRequest, signal: AbortSignal): Promise<Target> {
    signal.throwIfAborted();
    return new Promise<Target>((resolve, reject) => {
      const waiter: Waiter = {
        request,
        resolve: (target) => {
          signal.removeEventListener('abort', onAbort);
          resolve(target);
        },
        reject,
      };
      const onAbort = () => {
        if (this.#remove(waiter)) reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      const tenants = this.#waiting.get(request.lane) as Map<string, Waiter[]>;
      const list = tenants.get(request.tenant) ?? [];
      list.push(waiter);
      tenants.set(request.tenant, list);
      this.#count += 1;
      this.#pump();
      if (this.#count > 0 && request.source !== undefined) this.#maybeHold(request.source);
    });
  }

  finished(target: Target, isRetry: boolean, report: TryReport): void {
    this.state.release(target, isRetry, report, this.#now());
    this.#pump();
  }

  #pump(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    const now = this.#now();
    const skipped = new Set<Lane>();
    let retryAfter: number | undefined;
    for (;;) {
      if (this.#count === 0) break;
      // Whose turn it is is decided only when a slot is really free, so that lanes' shares count real grants.
      const ready = this.state.ready(now);
      if (ready.kind === 'wait') {
        this.#options.onWait?.(this.#route, ready.reason);
        if (ready.waitMs !== undefined) retryAfter = Math.min(retryAfter ?? ready.waitMs, ready.waitMs);
        if (ready.reason === 'down') this.#hold();
        break;
      }
      const counts = this.#laneCounts(skipped);
      const lane = this.#lanes.next(counts);
      if (lane === undefined) break;
      const pick = this.#nextWaiter(lane, now);
      if (pick.waiter === undefined) {
        skipped.add(lane);
        if (pick.waitMs !== undefined) retryAfter = Math.min(retryAfter ?? pick.waitMs, pick.waitMs);
        continue;
      }
      const admission = this.state.admit(
        { hashKey: pick.waiter.request.hashKey, isRetry: pick.waiter.request.isRetry },
        now,
      );
      if (admission.kind === 'wait') {
        this.#options.onWait?.(this.#route, admission.reason);
        if (admission.waitMs !== undefined)
          retryAfter = Math.min(retryAfter ?? admission.waitMs, admission.waitMs);
        if (admission.reason === 'down') this.#hold();
        break;
      }
      this.#take(pick.waiter);
      this.#options.onAdmit?.(this.#route, admission.target, now);
      pick.waiter.resolve(admission.target);
    }
    if (this.#count === 0 || (this.#count < this.#options.backlogLimit / 2 && !this.state.isDown(now)))
      this.#letGo();
    if (retryAfter !== undefined && this.#count > 0) {
      this.#timer = setTimeout(() => this.#pump(), retryAfter);
      this.#timer.unref();
    }
  }

  /** The next waiter of a lane whose tenant may go (quota), taking tenants in turn. */
  #nextWaiter(lane: Lane, now: number): { waiter?: Waiter; waitMs?: number } {
    const tenants = this.#waiting.get(lane) as Map<string, Waiter[]>;
    let soonest: number | undefined;
    for (const [tenant, list] of tenants) {
      const waiter = list[0];
      if (waiter === undefined) continue;
      const quota = this.#tenantQuota(tenant);
      if (quota !== undefined) {
        const wait = quota.peekWaitMs(now);
        if (wait > 0) {
          this.#options.onWait?.(this.#route, 'tenant-quota');
          soonest = Math.min(soonest ?? wait, wait);
          continue;
        }
        quota.take(now);
      }
      // Turns: a tenant that was served goes to the back of the lane's order.
      tenants.delete(tenant);
      tenants.set(tenant, list);
      return { waiter };
    }
    return soonest === undefined ? {} : { waitMs: soonest };
  }

  #tenantQuota(tenant: string): Gcra | undefined {
    const config = this.#config.upstream.tenantQuotas?.[tenant];
    if (config === undefined) return undefined;
    let gcra = this.#tenantRates.get(tenant);
    if (gcra === undefined) {
      gcra = new Gcra({ ratePerSecond: config.requestsPerSecond, burst: config.burst });
      this.#tenantRates.set(tenant, gcra);
    }
    return gcra;
  }

  #laneCounts(skipped: ReadonlySet<Lane>): Record<Lane, number> {
    const counts = { high: 0, normal: 0, low: 0 } as Record<Lane, number>;
    for (const lane of lanes) {
      if (skipped.has(lane)) continue;
      for (const list of (this.#waiting.get(lane) as Map<string, Waiter[]>).values())
        counts[lane] += list.length;
    }
    return counts;
  }

  #take(waiter: Waiter): void {
    this.#remove(waiter);
  }

  #remove(waiter: Waiter): boolean {
    const tenants = this.#waiting.get(waiter.request.lane) as Map<string, Waiter[]>;
    const list = tenants.get(waiter.request.tenant);
    const index = list?.indexOf(waiter) ?? -1;
    if (list === undefined || index < 0) return false;
    list.splice(index, 1);
    if (list.length === 0) tenants.delete(waiter.request.tenant);
    this.#count -= 1;
    return true;
  }

  #maybeHold(source: PartitionRef): void {
    if (this.#count > this.#options.backlogLimit || this.state.isDown(this.#now())) {
      this.#options.pauser?.hold(source, `upstream:${this.#route}`);
      this.#held = true;
    }
  }

  /** Pauses every partition that has tries waiting for this upstream (it is down). */
  #hold(): void {
    if (this.#options.pauser === undefined) return;
    for (const tenants of this.#waiting.values()) {
      for (const list of tenants.values()) {
        for (const waiter of list) {
          if (waiter.request.source !== undefined)
            this.#options.pauser.hold(waiter.request.source, `upstream:${this.#route}`);
        }
      }
    }
    this.#held = true;
  }

  #letGo(): void {
    if (!this.#held) return;
    this.#held = false;
    this.#options.pauser?.release(`upstream:${this.#route}`);
  }
}

/** What a try's outcome tells the upstream's health and shaping state. */
export function reportOf(outcome: UpstreamOutcome | undefined, now: number): TryReport {
  if (outcome === undefined) return { healthFailure: false, throttled: false };
  if (outcome.kind === 'error') {
    const healthFailure =
      outcome.code === 'UPSTREAM_CONNECT' ||
      outcome.code === 'UPSTREAM_TIMEOUT' ||
      outcome.code === 'UPSTREAM_RESET';
    return { healthFailure, throttled: false };
  }
  const retryAfter = retryAfterMs(outcome.headers['retry-after'], now);
  return {
    healthFailure: outcome.status >= 500,
    throttled: outcome.status === 429 || (retryAfter !== undefined && classify(outcome) === 'retry'),
    ...(retryAfter !== undefined ? { retryAfterMs: retryAfter } : {}),
  };
}
