import { describe, expect, it } from 'vitest';
import {
  ConsistentHashBalancer,
  createBalancer,
  LeastRequestBalancer,
  LocalityAwareBalancer,
  RoundRobinBalancer,
  WeightedRoundRobinBalancer,
} from '../src/traffic/balancers.ts';
import { type Balancer, balancerPolicies, type PickContext, type Target } from '../src/traffic/types.ts';

// mulberry32: a tiny seeded PRNG, so that every random choice in these tests repeats run after run.
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function target(id: string, extra: Partial<Target> = {}): Target {
  return { id, url: `http://${id}.internal`, weight: 1, ...extra };
}

function context(
  options: {
    seed?: number;
    hashKey?: string;
    outstanding?: Record<string, number>;
    saturated?: readonly string[];
  } = {},
): PickContext {
  const saturated = new Set(options.saturated ?? []);
  return {
    hashKey: options.hashKey,
    random: mulberry32(options.seed ?? 1),
    outstanding: (id) => options.outstanding?.[id] ?? 0,
    saturated: (id) => saturated.has(id),
  };
}

function pickMany(
  balancer: Balancer,
  candidates: readonly Target[],
  ctx: PickContext,
  count: number,
): string[] {
  const picked: string[] = [];
  for (let i = 0; i < count; i += 1) {
    const chosen = balancer.pick(candidates, ctx);
    if (chosen === undefined) throw new Error('pick returned undefined for a non-empty list');
    picked.push(chosen.id);
  }
  return picked;
}

function countBy(ids: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const id of ids) counts[id] = (counts[id] ?? 0) + 1;
  return counts;
}

describe('RoundRobinBalancer', () => {
  const candidates = [target('a'), target('b'), target('c')];

  it('cycles through the candidates in order', () => {
    expect(pickMany(new RoundRobinBalancer(), candidates, context(), 7)).toEqual([
      'a',
      'b',
      'c',
      'a',
      'b',
      'c',
      'a',
    ]);
  });

  it('visits each candidate equally over many picks', () => {
    expect(countBy(pickMany(new RoundRobinBalancer(), candidates, context(), 300))).toEqual({
      a: 100,
      b: 100,
      c: 100,
    });
  });

  it('keeps picking valid candidates when the list shrinks and grows', () => {
    const balancer = new RoundRobinBalancer();
    pickMany(balancer, candidates, context(), 2);
    const shorter = [target('x'), target('y')];
    expect(pickMany(balancer, shorter, context(), 4)).toEqual(['x', 'y', 'x', 'y']);
    expect(pickMany(balancer, candidates, context(), 3).sort()).toEqual(['a', 'b', 'c']);
  });
});

describe('WeightedRoundRobinBalancer', () => {
  const candidates = [target('a', { weight: 5 }), target('b'), target('c')];

  it('interleaves picks as nginx documents for weights 5, 1, 1', () => {
    expect(pickMany(new WeightedRoundRobinBalancer(), candidates, context(), 7)).toEqual([
      'a',
      'a',
      'b',
      'a',
      'c',
      'a',
      'a',
    ]);
  });

  it('gives exactly 5/1/1 in every window of 7 picks', () => {
    const picks = pickMany(new WeightedRoundRobinBalancer(), candidates, context(), 7000);
    for (let start = 0; start < picks.length; start += 7) {
      expect(countBy(picks.slice(start, start + 7))).toEqual({ a: 5, b: 1, c: 1 });
    }
    expect(countBy(picks)).toEqual({ a: 5000, b: 1000, c: 1000 });
  });

  it('follows weight changes and a target leaving without losing the schedule', () => {
    const balancer = new WeightedRoundRobinBalancer();
    pickMany(balancer, candidates, context(), 3);
    const withoutC = [target('a', { weight: 2 }), target('b')];
    const counts = countBy(pickMany(balancer, withoutC, context(), 300));
    // Credit carried over from before the change may shift one pick; the share must not drift beyond that.
    expect(Math.abs((counts.a ?? 0) - 200)).toBeLessThanOrEqual(1);
    expect((counts.a ?? 0) + (counts.b ?? 0)).toBe(300);
  });

  it('lets a returning target start afresh instead of with its old credit', () => {
    const balancer = new WeightedRoundRobinBalancer();
    const three = [target('a'), target('b'), target('c')];
    // Two picks leave c holding +2 credit; while c is away, a and b take turns.
    expect(pickMany(balancer, three, context(), 2)).toEqual(['a', 'b']);
    expect(pickMany(balancer, [target('a'), target('b')], context(), 1)).toEqual(['a']);
    // Had c kept its credit it would be picked now (3 against b's 1); starting from 0 it ties b and b comes first.
    expect(pickMany(balancer, three, context(), 1)).toEqual(['b']);
  });
});

describe('LeastRequestBalancer', () => {
  const candidates = [target('a'), target('b'), target('c')];

  it('never picks the most loaded target, since one of two distinct samples always has less', () => {
    const picks = pickMany(new LeastRequestBalancer(), candidates, context({ outstanding: { a: 50 } }), 3000);
    const counts = countBy(picks);
    expect(counts.a).toBeUndefined();
    expect(counts.b).toBeGreaterThan(1300);
    expect(counts.c).toBeGreaterThan(1300);
  });

  it('prefers less loaded targets in proportion to how loaded they are', () => {
    const picks = pickMany(
      new LeastRequestBalancer(),
      candidates,
      context({ seed: 7, outstanding: { a: 10, b: 5, c: 0 } }),
      3000,
    );
    const counts = countBy(picks);
    // c wins both pairs it is in (2/3 of picks), b wins the pair {a, b} (1/3), a never wins.
    expect(counts.c).toBeGreaterThan(1800);
    expect(counts.b).toBeGreaterThan(800);
    expect(counts.a).toBeUndefined();
  });

  it('spreads evenly when the load is equal', () => {
    const counts = countBy(
      pickMany(
        new LeastRequestBalancer(),
        candidates,
        context({ seed: 3, outstanding: { a: 2, b: 2, c: 2 } }),
        3000,
      ),
    );
    for (const id of ['a', 'b', 'c']) {
      expect(counts[id]).toBeGreaterThan(900);
      expect(counts[id]).toBeLessThan(1100);
    }
  });

  it('compares load per unit of weight', () => {
    const heavy = target('heavy', { weight: 2 });
    const light = target('light');
    // heavy: (3 + 1) / 2 = 2, light: (2 + 1) / 1 = 3; by raw counts light would win.
    const ctx = context({ outstanding: { heavy: 3, light: 2 } });
    expect(countBy(pickMany(new LeastRequestBalancer(), [heavy, light], ctx, 50))).toEqual({ heavy: 50 });
    // Idle, the heavier target still wins rather than tying.
    expect(countBy(pickMany(new LeastRequestBalancer(), [heavy, light], context(), 50))).toEqual({
      heavy: 50,
    });
  });

  it('returns the only candidate', () => {
    expect(new LeastRequestBalancer().pick([target('only')], context())?.id).toBe('only');
  });
});

describe('ConsistentHashBalancer', () => {
  const keys = Array.from({ length: 10_000 }, (_, i) => `order-${i}`);
  const four = ['t0', 't1', 't2', 't3'].map((id) => target(id));

  function assign(balancer: Balancer, candidates: readonly Target[]): Map<string, string> {
    const mapping = new Map<string, string>();
    for (const key of keys) {
      const chosen = balancer.pick(candidates, context({ hashKey: key }));
      if (chosen === undefined) throw new Error('pick returned undefined for a non-empty list');
      mapping.set(key, chosen.id);
    }
    return mapping;
  }

  function shares(mapping: Map<string, string>): Record<string, number> {
    return countBy([...mapping.values()]);
  }

  it('maps the same key to the same target every time, whatever the balancer instance or list order', () => {
    const first = assign(new ConsistentHashBalancer(), four);
    expect(assign(new ConsistentHashBalancer(), four)).toEqual(first);
    expect(assign(new ConsistentHashBalancer(), [...four].reverse())).toEqual(first);
  });

  it('spreads 10,000 keys over 4 equal targets within ±15% of even', () => {
    const counts = shares(assign(new ConsistentHashBalancer(), four));
    for (const id of ['t0', 't1', 't2', 't3']) {
      expect(counts[id]).toBeGreaterThan(2500 * 0.85);
      expect(counts[id]).toBeLessThan(2500 * 1.15);
    }
  });

  it('moves about 1/5 of the keys, all to the new target, when a fifth target joins', () => {
    const balancer = new ConsistentHashBalancer();
    const before = assign(balancer, four);
    const after = assign(balancer, [...four, target('t4')]);
    const moved = keys.filter((key) => before.get(key) !== after.get(key));
    expect(moved.length / keys.length).toBeGreaterThan(0.1);
    expect(moved.length / keys.length).toBeLessThan(0.3);
    for (const key of moved) expect(after.get(key)).toBe('t4');
  });

  it('moves only the keys of a target that leaves', () => {
    const balancer = new ConsistentHashBalancer();
    const before = assign(balancer, four);
    const after = assign(
      balancer,
      four.filter((t) => t.id !== 't2'),
    );
    for (const key of keys) {
      if (before.get(key) === 't2') expect(after.get(key)).not.toBe('t2');
      else expect(after.get(key)).toBe(before.get(key));
    }
  });

  it('gives a target of weight 2 about twice the share of the others', () => {
    const weighted = [target('t0', { weight: 2 }), target('t1'), target('t2'), target('t3')];
    const counts = shares(assign(new ConsistentHashBalancer(), weighted));
    const lightMean = ((counts.t1 ?? 0) + (counts.t2 ?? 0) + (counts.t3 ?? 0)) / 3;
    const ratio = (counts.t0 ?? 0) / lightMean;
    expect(ratio).toBeGreaterThan(1.6);
    expect(ratio).toBeLessThan(2.4);
  });

  it('picks at random, over all candidates, when there is no hash key', () => {
    const counts = countBy(pickMany(new ConsistentHashBalancer(), four, context({ seed: 11 }), 4000));
    for (const id of ['t0', 't1', 't2', 't3']) {
      expect(counts[id]).toBeGreaterThan(850);
      expect(counts[id]).toBeLessThan(1150);
    }
  });
});

describe('LocalityAwareBalancer', () => {
  const zoneA1 = target('zone-a1', { region: 'eu', zone: 'eu-a' });
  const zoneA2 = target('zone-a2', { region: 'eu', zone: 'eu-a' });
  const zoneB = target('zone-b', { region: 'eu', zone: 'eu-b' });
  const remote = target('remote', { region: 'us', zone: 'us-a' });
  // Same zone name in another region: must not count as local.
  const lookalike = target('lookalike', { region: 'us', zone: 'eu-a' });
  const all = [zoneA1, zoneA2, zoneB, remote, lookalike];

  // Records the list the inner policy is given, so that the narrowing itself is what is asserted.
  class RecordingBalancer implements Balancer {
    seen: string[] = [];
    pick(candidates: readonly Target[], _context: PickContext): Target | undefined {
      this.seen = candidates.map((t) => t.id);
      return candidates[0];
    }
  }

  function narrowed(candidates: readonly Target[], saturated: readonly string[] = []): string[] {
    const inner = new RecordingBalancer();
    new LocalityAwareBalancer(inner, { region: 'eu', zone: 'eu-a' }).pick(candidates, context({ saturated }));
    return inner.seen;
  }

  it('prefers the targets of the local zone', () => {
    expect(narrowed(all)).toEqual(['zone-a1', 'zone-a2']);
  });

  it('leaves out saturated local targets while others in the zone have room', () => {
    expect(narrowed(all, ['zone-a1'])).toEqual(['zone-a2']);
  });

  it('spills to the same region when the local zone is saturated', () => {
    expect(narrowed(all, ['zone-a1', 'zone-a2'])).toEqual(['zone-b']);
  });

  it('spills to the same region when the local zone has no targets', () => {
    expect(narrowed([zoneB, remote, lookalike])).toEqual(['zone-b']);
  });

  it('spills to other regions when the whole region is saturated', () => {
    expect(narrowed(all, ['zone-a1', 'zone-a2', 'zone-b'])).toEqual(['remote', 'lookalike']);
  });

  it('offers every candidate when all are saturated', () => {
    expect(
      narrowed(
        all,
        all.map((t) => t.id),
      ),
    ).toEqual(all.map((t) => t.id));
  });

  it('balances within the local zone with the inner policy', () => {
    const balancer = createBalancer('round-robin', { region: 'eu', zone: 'eu-a' });
    expect(countBy(pickMany(balancer, all, context(), 10))).toEqual({ 'zone-a1': 5, 'zone-a2': 5 });
  });

  it('narrows to the region when only a region is configured', () => {
    const balancer = createBalancer('round-robin', { region: 'us' });
    expect(countBy(pickMany(balancer, all, context(), 10))).toEqual({ remote: 5, lookalike: 5 });
  });
});

describe('createBalancer', () => {
  it.each(balancerPolicies)('%s returns undefined for an empty candidate list', (policy) => {
    expect(createBalancer(policy).pick([], context({ hashKey: 'k' }))).toBeUndefined();
    expect(createBalancer(policy).pick([], context())).toBeUndefined();
    expect(createBalancer(policy, { region: 'eu', zone: 'eu-a' }).pick([], context())).toBeUndefined();
  });

  it.each(balancerPolicies)('%s picks one of the candidates', (policy) => {
    const candidates = [target('a'), target('b')];
    const chosen = createBalancer(policy).pick(candidates, context({ hashKey: 'k' }));
    expect(candidates).toContain(chosen);
  });

  it('builds the policy named', () => {
    expect(createBalancer('round-robin')).toBeInstanceOf(RoundRobinBalancer);
    expect(createBalancer('weighted-round-robin')).toBeInstanceOf(WeightedRoundRobinBalancer);
    expect(createBalancer('least-request')).toBeInstanceOf(LeastRequestBalancer);
    expect(createBalancer('consistent-hash')).toBeInstanceOf(ConsistentHashBalancer);
    expect(createBalancer('round-robin', { zone: 'eu-a' })).toBeInstanceOf(LocalityAwareBalancer);
  });
});
