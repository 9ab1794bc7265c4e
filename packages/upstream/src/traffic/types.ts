/**
 * The traffic engine's vocabulary. A route's upstream has targets; balancers pick one of the targets that health
 * allows; shaping decides when a request may go at all.
 */

export interface Target {
  /** Stable identity within its upstream (the target's URL). */
  id: string;
  url: string;
  /** Relative share for weighted policies; at least 1. */
  weight: number;
  region?: string;
  zone?: string;
}

export interface PickContext {
  /** The request attribute consistent hashing uses (ordering key, a header, the path). */
  hashKey?: string;
  /** Uniform in [0, 1); injected so that tests are seeded and repeatable. */
  random(): number;
  /** Requests in flight toward a target from this process. */
  outstanding(targetId: string): number;
  /** Whether a target has no room for another request (its concurrency or rate limit is reached). */
  saturated(targetId: string): boolean;
}

/** Picks one of the candidates (the targets health allows); undefined only when there are none. */
export interface Balancer {
  pick(candidates: readonly Target[], context: PickContext): Target | undefined;
}

export const balancerPolicies = [
  'round-robin',
  'weighted-round-robin',
  'least-request',
  'consistent-hash',
] as const;
export type BalancerPolicy = (typeof balancerPolicies)[number];

export const lanes = ['high', 'normal', 'low'] as const;
export type Lane = (typeof lanes)[number];
