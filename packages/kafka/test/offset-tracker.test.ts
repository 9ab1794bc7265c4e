import { describe, expect, it } from 'vitest';
import { PartitionOffsets } from '../src/offset-tracker.ts';

/** mulberry32: a tiny deterministic PRNG, so that a failing interleaving can be replayed from its seed. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

describe('PartitionOffsets', () => {
  it('knows which offsets were already handed out', () => {
    const offsets = new PartitionOffsets();
    expect(offsets.handedOut(0n)).toBe(false);
    offsets.start(5n);
    offsets.start(6n);
    offsets.finish(5n);
    expect([4n, 5n, 6n, 7n].map((offset) => offsets.handedOut(offset))).toEqual([true, true, true, false]);
  });

  it('has nothing to commit before any record has started', () => {
    const offsets = new PartitionOffsets();
    expect(offsets.committable()).toBeUndefined();
    expect(offsets.inFlight).toBe(0);
  });

  it('commits only the contiguous finished prefix when records finish out of order', () => {
    const offsets = new PartitionOffsets();
    for (const offset of [10n, 11n, 12n, 13n]) offsets.start(offset);

    expect(offsets.committable()).toBe(10n);

    offsets.finish(12n);
    offsets.finish(13n);
    expect(offsets.committable()).toBe(10n);

    offsets.finish(10n);
    expect(offsets.committable()).toBe(11n);

    offsets.finish(11n);
    expect(offsets.committable()).toBe(14n);
    expect(offsets.inFlight).toBe(0);
  });

  it('commits past gaps in the offsets it was handed', () => {
    const offsets = new PartitionOffsets();
    offsets.start(3n);
    offsets.start(7n);
    offsets.finish(3n);
    expect(offsets.committable()).toBe(7n);
    offsets.finish(7n);
    expect(offsets.committable()).toBe(8n);
  });

  it('reports a committable offset only when it moved past the last markCommitted', () => {
    const offsets = new PartitionOffsets();
    offsets.start(0n);
    offsets.start(1n);
    offsets.finish(0n);
    expect(offsets.committable()).toBe(1n);

    offsets.markCommitted(1n);
    expect(offsets.committable()).toBeUndefined();

    offsets.finish(1n);
    expect(offsets.committable()).toBe(2n);
    offsets.markCommitted(2n);

    // An older commit acknowledged late must not pull the committed point back.
    offsets.markCommitted(1n);
    expect(offsets.committable()).toBeUndefined();

    offsets.start(2n);
    expect(offsets.committable()).toBeUndefined();
    offsets.finish(2n);
    expect(offsets.committable()).toBe(3n);
  });

  it('ignores finishing an offset that was never started', () => {
    const offsets = new PartitionOffsets();
    offsets.start(5n);
    offsets.start(6n);

    offsets.finish(4n);
    offsets.finish(9n);
    expect(offsets.inFlight).toBe(2);
    expect(offsets.committable()).toBe(5n);

    offsets.finish(5n);
    offsets.finish(5n);
    expect(offsets.inFlight).toBe(1);
    expect(offsets.committable()).toBe(6n);
  });

  it('never offers an offset above an unfinished record, over many seeded random interleavings', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const random = seededRandom(seed);
      const offsets = new PartitionOffsets();
      const unfinished = new Set<bigint>();
      let next = BigInt(Math.floor(random() * 1_000));
      let committed: bigint | undefined;
      let fetchedUpTo: bigint | undefined;

      for (let step = 0; step < 300; step++) {
        const roll = random();
        if (roll < 0.4) {
          offsets.start(next);
          unfinished.add(next);
          fetchedUpTo = next + 1n;
          // Compacted topics and transaction markers leave holes in the offsets handed out.
          next += 1n + BigInt(Math.floor(random() * 3));
        } else if (roll < 0.8 && unfinished.size > 0) {
          const candidates = [...unfinished];
          const offset = candidates[Math.floor(random() * candidates.length)] as bigint;
          offsets.finish(offset);
          unfinished.delete(offset);
        } else {
          const offset = offsets.committable();
          const lowestUnfinished = [...unfinished].reduce<bigint | undefined>(
            (low, o) => (low === undefined || o < low ? o : low),
            undefined,
          );
          const expected = fetchedUpTo === undefined ? undefined : (lowestUnfinished ?? fetchedUpTo);
          const context = `seed ${seed}, step ${step}`;
          if (offset !== undefined) {
            for (const open of unfinished) expect(offset, context).toBeLessThanOrEqual(open);
            expect(offset, context).toBe(expected);
            if (committed !== undefined) expect(offset, context).toBeGreaterThan(committed);
            if (random() < 0.5) {
              offsets.markCommitted(offset);
              committed = offset;
            }
          } else {
            expect(
              expected === undefined || (committed !== undefined && expected <= committed),
              context,
            ).toBe(true);
          }
        }
        expect(offsets.inFlight).toBe(unfinished.size);
      }
    }
  });
});
