import { describe, expect, it } from 'vitest';
import { defaultMinShare, LaneScheduler } from '../src/traffic/lanes.ts';
import type { Lane } from '../src/traffic/types.ts';

const saturated = { high: 1, normal: 1, low: 1 } as const;

function run(scheduler: LaneScheduler, slots: number, waiting: Record<Lane, number>): Lane[] {
  const granted: Lane[] = [];
  for (let i = 0; i < slots; i++) {
    const lane = scheduler.next(waiting);
    if (lane === undefined) throw new Error('expected a lane');
    granted.push(lane);
  }
  return granted;
}

describe('LaneScheduler', () => {
  it('guarantees the default shares', () => {
    expect(defaultMinShare).toEqual({ high: 0, normal: 0.2, low: 0.1 });
  });

  it('gives low and normal their minimum shares when every lane is always waiting', () => {
    const scheduler = new LaneScheduler();
    run(scheduler, 1_000, saturated);
    const served = scheduler.served();
    expect(served.high + served.normal + served.low).toBe(1_000);
    expect(Math.abs(served.low / 1_000 - 0.1)).toBeLessThanOrEqual(0.01);
    expect(Math.abs(served.normal / 1_000 - 0.2)).toBeLessThanOrEqual(0.01);
    expect(served.high).toBeGreaterThanOrEqual(690);
  });

  it('keeps the guarantee when only high and low are waiting', () => {
    const scheduler = new LaneScheduler();
    run(scheduler, 1_000, { high: 5, normal: 0, low: 3 });
    expect(scheduler.served()).toEqual({ high: 900, normal: 0, low: 100 });
  });

  it('gives every slot to high when only high is waiting, and strict priority above the guarantees', () => {
    const scheduler = new LaneScheduler();
    expect(new Set(run(scheduler, 1_000, { high: 2, normal: 0, low: 0 }))).toEqual(new Set(['high']));
    expect(new Set(run(scheduler, 100, { high: 0, normal: 4, low: 0 }))).toEqual(new Set(['normal']));
    // Without high, normal gets everything its priority gives it, and low still its tenth.
    run(scheduler, 1_000, { high: 0, normal: 4, low: 4 });
    expect(scheduler.served()).toEqual({ high: 1_000, normal: 100 + 900, low: 100 });
  });

  it('returns undefined when nothing is waiting, granting nothing', () => {
    const scheduler = new LaneScheduler();
    expect(scheduler.next({ high: 0, normal: 0, low: 0 })).toBeUndefined();
    expect(scheduler.served()).toEqual({ high: 0, normal: 0, low: 0 });
  });

  it('spreads the guaranteed slots evenly instead of in runs', () => {
    const granted = run(new LaneScheduler(), 1_000, saturated);
    for (let i = 1; i < granted.length; i++) {
      if (granted[i] !== 'high' && granted[i] === granted[i - 1])
        throw new Error(`run of ${granted[i]} at ${i}`);
    }
    const lowAt = granted.flatMap((lane, i) => (lane === 'low' ? [i] : []));
    const gaps = lowAt.slice(1).map((at, i) => at - (lowAt[i] ?? 0));
    expect(Math.max(...gaps)).toBeLessThanOrEqual(11);
  });

  it('does not let an idle lane bank its share and take a run of slots later', () => {
    const scheduler = new LaneScheduler();
    run(scheduler, 500, { high: 1, normal: 0, low: 0 });
    const granted = run(scheduler, 20, saturated);
    // The first low slot is earned by ten slots of waiting, not at once (the tenth ties with normal, the higher).
    expect(granted.indexOf('low')).toBe(10);
    expect(granted.filter((lane) => lane === 'low')).toHaveLength(1);
  });

  it('drops the credit a lane earned when it stops waiting', () => {
    const scheduler = new LaneScheduler();
    const onlyLow = { high: 1, normal: 0, low: 1 };
    // Nine slots of waiting earn low 0.9 of a slot; an idle slot forfeits it, so it starts again from nothing.
    expect(run(scheduler, 9, onlyLow)).not.toContain('low');
    run(scheduler, 1, { high: 1, normal: 0, low: 0 });
    expect(run(scheduler, 10, onlyLow).indexOf('low')).toBe(9);
  });

  it('follows the configured shares', () => {
    const scheduler = new LaneScheduler({ minShare: { high: 0.1, normal: 0, low: 0.5 } });
    run(scheduler, 1_000, saturated);
    expect(scheduler.served()).toEqual({ high: 500, normal: 0, low: 500 });
  });

  it('rejects shares outside [0, 1] or summing above 1', () => {
    expect(() => new LaneScheduler({ minShare: { high: 0, normal: 0.7, low: 0.4 } })).toThrow(RangeError);
    expect(() => new LaneScheduler({ minShare: { high: -0.1, normal: 0, low: 0 } })).toThrow(RangeError);
  });
});
