import type { Balancer, BalancerPolicy, PickContext, Target } from './types.ts';

// Where this gateway instance runs; targets in the same zone, then the same region, are preferred.
interface Locality {
  region?: string;
  zone?: string;
}

/** Cycles through the candidates in order. */
export class RoundRobinBalancer implements Balancer {
  #next = 0;

  pick(candidates: readonly Target[], _context: PickContext): Target | undefined {
    if (candidates.length === 0) return undefined;
    // Reducing modulo the current length keeps the index valid when the list shrinks between picks, and storing
    // the reduced value keeps the counter bounded however long the process runs.
    const index = this.#next % candidates.length;
    this.#next = index + 1;
    return candidates[index];
  }
}

/**
 * Smooth weighted round robin (nginx, ngx_http_upstream_get_peer): over any window of `sum(weights)` picks each
 * target gets exactly its weight's share, and heavy targets are interleaved with light ones instead of picked in
 * bursts.
 */
export class WeightedRoundRobinBalancer implements Balancer {
  // Keyed by target id, not position, so that the schedule survives targets joining, leaving or being reordered.
  readonly #current = new Map<string, number>();

  pick(candidates: readonly Target[], _context: PickContext): Target | undefined {
    if (candidates.length === 0) return undefined;
    let total = 0;
    let best: Target | undefined;
    let bestWeight = Number.NEGATIVE_INFINITY;
    for (const target of candidates) {
      const weight = weightOf(target);
      const current = (this.#current.get(target.id) ?? 0) + weight;
      this.#current.set(target.id, current);
      total += weight;
      // Strictly greater: ties go to the earlier candidate, which is what gives nginx's documented sequence.
      if (current > bestWeight) {
        best = target;
        bestWeight = current;
      }
    }
    if (best === undefined) return undefined;
    this.#current.set(best.id, bestWeight - total);
    if (this.#current.size > candidates.length) this.#forgetAbsent(candidates);
    return best;
  }

  // A target that left must not come back with the credit or debt it had, and the map must not grow without bound.
  #forgetAbsent(candidates: readonly Target[]): void {
    const present = new Set(candidates.map((target) => target.id));
    for (const id of this.#current.keys()) {
      if (!present.has(id)) this.#current.delete(id);
    }
  }
}

/**
 * Least request as "power of two choices" (Envoy's LEAST_REQUEST): of two distinct random candidates, the one
 * with fewer requests in flight per unit of weight. Two samples avoid the herd that a global minimum causes when
 * many pickers see the same stale counts, yet keep load almost as even.
 */
export class LeastRequestBalancer implements Balancer {
  pick(candidates: readonly Target[], context: PickContext): Target | undefined {
    if (candidates.length < 2) return candidates[0];
    const first = randomIndex(candidates.length, context.random);
    // Drawing from n - 1 and skipping `first` gives a second index distinct from the first, uniformly.
    let second = randomIndex(candidates.length - 1, context.random);
    if (second >= first) second += 1;
    const a = candidates[first];
    const b = candidates[second];
    if (a === undefined || b === undefined) return a ?? b;
    return load(b, context) < load(a, context) ? b : a;
  }
}

// Envoy divides by weight after counting the request about to be sent (weight / (active + 1)): with a bare
// outstanding / weight two idle targets would tie at 0 and weight would be ignored exactly when load is light.
function load(target: Target, context: PickContext): number {
  return (context.outstanding(target.id) + 1) / weightOf(target);
}

/** Virtual nodes per unit of weight; ketama's figure, enough for a spread within a few percent of even. */
const pointsPerWeight = 160;
/** Rings kept for recently seen candidate sets, so that sets alternating (saturation, locality) do not rebuild. */
const ringCacheSize = 8;

interface Ring {
  /** Sorted positions of the virtual nodes. */
  points: Uint32Array;
  /** For each point, the index of its target in the candidate list the ring was built from. */
  owners: Uint32Array;
}

/**
 * Consistent hashing on a ketama-style ring: each candidate owns `160 × weight` points at
 * hash(`${id}#${i}`), and a key goes to the first point clockwise of hash(key). Adding a target to N moves only
 * about 1/(N+1) of the keys, all of them to the new target; removing one moves only the keys it had. Without a
 * hash key the pick is uniformly random.
 */
export class ConsistentHashBalancer implements Balancer {
  readonly #rings = new Map<string, Ring>();

  pick(candidates: readonly Target[], context: PickContext): Target | undefined {
    if (candidates.length === 0) return undefined;
    if (context.hashKey === undefined) return candidates[randomIndex(candidates.length, context.random)];
    const ring = this.#ringFor(candidates);
    return candidates[ring.owners[ownerSlot(ring.points, hash32(context.hashKey))] ?? 0];
  }

  #ringFor(candidates: readonly Target[]): Ring {
    // Owners are indices into the candidate list, so the signature keeps the list's order: a reordered list gets
    // its own ring (with the same key → target mapping), never one whose indices point at other targets.
    const signature = JSON.stringify(candidates.map((target) => [target.id, weightOf(target)]));
    const cached = this.#rings.get(signature);
    if (cached !== undefined) {
      // Re-inserting marks the ring most recently used; Map iteration order then yields the least recent first.
      this.#rings.delete(signature);
      this.#rings.set(signature, cached);
      return cached;
    }
    const ring = buildRing(candidates);
    this.#rings.set(signature, ring);
    if (this.#rings.size > ringCacheSize) {
      const oldest = this.#rings.keys().next().value;
      if (oldest !== undefined) this.#rings.delete(oldest);
    }
    return ring;
  }
}

function buildRing(candidates: readonly Target[]): Ring {
  const nodes: { point: number; owner: number }[] = [];
  candidates.forEach((target, owner) => {
    const count = Math.max(1, Math.round(pointsPerWeight * weightOf(target)));
    for (let i = 0; i < count; i += 1) nodes.push({ point: hash32(`${target.id}#${i}`), owner });
  });
  // Colliding points are ordered by target id so that the mapping does not depend on the candidates' order.
  nodes.sort(
    (x, y) => x.point - y.point || compareIds(candidates[x.owner]?.id ?? '', candidates[y.owner]?.id ?? ''),
  );
  return {
    points: Uint32Array.from(nodes, (node) => node.point),
    owners: Uint32Array.from(nodes, (node) => node.owner),
  };
}

function compareIds(x: string, y: string): number {
  if (x === y) return 0;
  return x < y ? -1 : 1;
}

// Binary search for the first point at or after `hash`; past the last point the ring wraps to the first.
function ownerSlot(points: Uint32Array, hash: number): number {
  let low = 0;
  let high = points.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((points[middle] ?? 0) < hash) low = middle + 1;
    else high = middle;
  }
  return low === points.length ? 0 : low;
}

const utf8 = new TextEncoder();

/**
 * FNV-1a (32-bit) over the UTF-8 bytes, finished with murmur3's fmix32. FNV-1a is fast, synchronous and
 * dependency-free, and a cryptographic hash (ketama's MD5) buys nothing here. But FNV-1a alone mixes the last
 * byte with a single multiply, so keys that differ only at the end ("a#1", "a#2" — exactly what virtual nodes
 * and sequential keys look like) land close together and the ring clusters; fmix32 avalanches every input bit
 * over the whole word so that points spread evenly.
 */
function hash32(value: string): number {
  let hash = 0x811c9dc5;
  for (const byte of utf8.encode(value)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193);
  }
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}

/**
 * Prefers nearby targets that have room: the candidates in this instance's zone that are not saturated, else
 * those in its region, else any that are not saturated, else all of them (every target is full, so the inner
 * policy chooses where to wait). The inner balancer picks within the narrowed list.
 */
export class LocalityAwareBalancer implements Balancer {
  readonly #inner: Balancer;
  readonly #locality: Locality;

  constructor(inner: Balancer, locality: Locality) {
    this.#inner = inner;
    this.#locality = locality;
  }

  pick(candidates: readonly Target[], context: PickContext): Target | undefined {
    return this.#inner.pick(narrow(candidates, this.#locality, context), context);
  }
}

function narrow(candidates: readonly Target[], locality: Locality, context: PickContext): readonly Target[] {
  const available = candidates.filter((target) => !context.saturated(target.id));
  const { region, zone } = locality;
  if (zone !== undefined) {
    // Zone names are only unique within a region, so a zone matches only when the region does too.
    const sameZone = available.filter(
      (target) => target.zone === zone && (region === undefined || target.region === region),
    );
    if (sameZone.length > 0) return sameZone;
  }
  if (region !== undefined) {
    const sameRegion = available.filter((target) => target.region === region);
    if (sameRegion.length > 0) return sameRegion;
  }
  return available.length > 0 ? available : candidates;
}

/** The balancer for a route's policy, preferring targets near `locality` when it is given. */
export function createBalancer(policy: BalancerPolicy, locality?: Locality): Balancer {
  const balancer = balancerFor(policy);
  return locality === undefined ? balancer : new LocalityAwareBalancer(balancer, locality);
}

function balancerFor(policy: BalancerPolicy): Balancer {
  switch (policy) {
    case 'round-robin':
      return new RoundRobinBalancer();
    case 'weighted-round-robin':
      return new WeightedRoundRobinBalancer();
    case 'least-request':
      return new LeastRequestBalancer();
    case 'consistent-hash':
      return new ConsistentHashBalancer();
    default:
      return assertNever(policy);
  }
}

// Weights come from config that promises at least 1; a zero, negative or non-numeric weight would stall smooth
// WRR or leave a target without ring points, so it counts as 1.
function weightOf(target: Target): number {
  return Number.isFinite(target.weight) && target.weight >= 1 ? target.weight : 1;
}

// `random()` is uniform in [0, 1); the clamp keeps an out-of-contract 1 from indexing past the end.
function randomIndex(length: number, random: () => number): number {
  return Math.min(length - 1, Math.floor(random() * length));
}

function assertNever(value: never): never {
  throw new Error(`unhandled balancer policy: ${String(value)}`);
}
