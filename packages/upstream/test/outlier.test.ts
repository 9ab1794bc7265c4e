import { describe, expect, it } from 'vitest';
import { defaultOutlierOptions, OutlierDetector } from '../src/traffic/outlier.ts';

const start = 1_700_000_000_000;

const targets = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `t${i}` }));

function fail(detector: OutlierDetector, targetId: string, times: number, now: number): void {
  for (let i = 0; i < times; i++) detector.record(targetId, false, now);
}

/** A detector that knows `n` targets, as the engine's first `available` call makes it. */
function detectorOf(n: number, options: ConstructorParameters<typeof OutlierDetector>[0] = {}) {
  const detector = new OutlierDetector(options);
  detector.available(targets(n), start);
  return detector;
}

/** When the target's current ejection ends, read from the metrics state. */
function ejectedUntil(detector: OutlierDetector, targetId: string, now: number): number | undefined {
  return detector.state(now).find((entry) => entry.targetId === targetId)?.until;
}

describe('OutlierDetector', () => {
  it('has Envoy’s defaults', () => {
    expect(defaultOutlierOptions).toEqual({
      consecutiveFailures: 5,
      minRequests: 10,
      intervalMs: 10_000,
      baseEjectionMs: 30_000,
      maxEjectionMs: 300_000,
      maxEjectionPercent: 10,
      panicThresholdPercent: 50,
    });
  });

  it('ejects a target after 5 consecutive failures and takes it back after 30 s', () => {
    const detector = detectorOf(10);
    fail(detector, 't3', 4, start);
    expect(detector.isEjected('t3', start)).toBe(false);
    detector.record('t3', false, start + 5);
    expect(detector.isEjected('t3', start + 5)).toBe(true);
    expect(detector.available(targets(10), start + 5).map((t) => t.id)).not.toContain('t3');
    expect(detector.isEjected('t3', start + 5 + 29_999)).toBe(true);
    expect(detector.isEjected('t3', start + 5 + 30_000)).toBe(false);
    expect(detector.available(targets(10), start + 5 + 30_000)).toHaveLength(10);
    expect(detector.ejectionCount('t3')).toBe(1);
  });

  it('starts counting again after a success', () => {
    const detector = detectorOf(10);
    fail(detector, 't0', 4, start);
    detector.record('t0', true, start);
    fail(detector, 't0', 4, start);
    expect(detector.isEjected('t0', start)).toBe(false);
    detector.record('t0', false, start);
    expect(detector.isEjected('t0', start)).toBe(true);
  });

  it('ejects for base × ejections: 30 s, then 60 s, then 90 s, capped at maxEjectionMs', () => {
    const detector = detectorOf(10, { maxEjectionMs: 70_000 });
    let now = start;
    const lengths: number[] = [];
    for (let i = 0; i < 4; i++) {
      fail(detector, 't1', 5, now);
      const until = ejectedUntil(detector, 't1', now);
      if (until === undefined) throw new Error('expected an ejection');
      lengths.push(until - now);
      // Fails again the moment it is back, before the multiplier can shrink.
      now = until;
    }
    expect(lengths).toEqual([30_000, 60_000, 70_000, 70_000]);
    expect(detector.ejectionCount('t1')).toBe(4);
  });

  it('lasts 60 s the second time with the default cap of 300 s reached at the tenth', () => {
    const detector = detectorOf(10);
    let now = start;
    const lengths: number[] = [];
    for (let i = 0; i < 11; i++) {
      fail(detector, 't1', 5, now);
      const until = ejectedUntil(detector, 't1', now) ?? Number.NaN;
      lengths.push(until - now);
      now = until + 1;
    }
    expect(lengths[1]).toBe(60_000);
    expect(lengths.slice(8)).toEqual([270_000, 300_000, 300_000]);
  });

  it('shrinks the multiplier by one per interval the target stays back', () => {
    const detector = detectorOf(10);
    fail(detector, 't1', 5, start);
    const back = start + 30_000;
    fail(detector, 't1', 5, back);
    expect(ejectedUntil(detector, 't1', back)).toBe(back + 60_000);
    // Back at back + 60 s with multiplier 2; two quiet intervals later it is 0, so the next ejection is 30 s again.
    const later = back + 60_000 + 20_000;
    fail(detector, 't1', 5, later);
    expect(ejectedUntil(detector, 't1', later)).toBe(later + 30_000);
    expect(detector.ejectionCount('t1')).toBe(3);
  });

  it('never ejects more than maxEjectionPercent of the targets at once (10 targets, 10%: one)', () => {
    const detector = detectorOf(10);
    for (const { id } of targets(10)) fail(detector, id, 5, start);
    const ejected = detector.state(start).filter((entry) => entry.ejected);
    expect(ejected.map((entry) => entry.targetId)).toEqual(['t0']);
    expect(detector.available(targets(10), start)).toHaveLength(9);
    // Once t0 is back, the next failure of another failing target ejects it.
    const back = start + 30_000;
    detector.record('t5', false, back);
    expect(detector.isEjected('t5', back)).toBe(true);
    expect(detector.state(back).filter((entry) => entry.ejected)).toHaveLength(1);
  });

  it('allows floor(n × percent / 100) ejections when that is more than one', () => {
    const detector = detectorOf(20);
    for (const { id } of targets(20)) fail(detector, id, 5, start);
    expect(detector.state(start).filter((entry) => entry.ejected)).toHaveLength(2);
  });

  it('never ejects the last healthy target, and never a lone one', () => {
    const pair = detectorOf(2, { maxEjectionPercent: 100 });
    fail(pair, 't0', 5, start);
    fail(pair, 't1', 5, start);
    expect(pair.isEjected('t0', start)).toBe(true);
    expect(pair.isEjected('t1', start)).toBe(false);

    const lone = detectorOf(1, { maxEjectionPercent: 100 });
    fail(lone, 't0', 50, start);
    expect(lone.isEjected('t0', start)).toBe(false);
  });

  it('returns every target in panic mode, when fewer than panicThresholdPercent are healthy', () => {
    const all = targets(4);
    const detector = detectorOf(4, { maxEjectionPercent: 100 });
    fail(detector, 't0', 5, start);
    fail(detector, 't1', 5, start);
    // Two of four healthy is 50%: not below the threshold.
    expect(detector.available(all, start).map((t) => t.id)).toEqual(['t2', 't3']);
    fail(detector, 't2', 5, start);
    expect(detector.isEjected('t2', start)).toBe(true);
    expect(detector.available(all, start)).toEqual(all);
    expect(detector.available([], start)).toEqual([]);
  });

  it('ejects on a failure rate above failureRatePercent once minRequests were seen in the interval', () => {
    const detector = detectorOf(10, { failureRatePercent: 50 });
    // Never five in a row, 7 of 10 failed.
    const pattern = [false, false, true, false, false, true, false, false, true, false];
    pattern.slice(0, 9).forEach((success, i) => {
      detector.record('t2', success, start + i * 100);
    });
    expect(detector.isEjected('t2', start + 900)).toBe(false);
    detector.record('t2', pattern[9] ?? false, start + 900);
    expect(detector.isEjected('t2', start + 900)).toBe(true);
  });

  it('does not eject at exactly the failure rate, nor on failures older than the interval', () => {
    const atRate = detectorOf(10, { failureRatePercent: 50 });
    for (let i = 0; i < 10; i++) atRate.record('t0', i % 2 === 0, start + i);
    expect(atRate.isEjected('t0', start + 10)).toBe(false);

    const spread = detectorOf(10, { failureRatePercent: 50 });
    const pattern = [false, false, true, false, false, true, false, false, true, false, false, true];
    // 2.5 s apart, at most four of them are in any 10 s interval: below minRequests.
    pattern.forEach((success, i) => {
      spread.record('t0', success, start + i * 2_500);
    });
    expect(spread.ejectionCount('t0')).toBe(0);
  });

  it('ignores results while a target is ejected, so it comes back with a clean slate', () => {
    const detector = detectorOf(10);
    fail(detector, 't4', 5, start);
    fail(detector, 't4', 4, start + 1_000);
    const back = start + 30_000;
    detector.record('t4', false, back);
    expect(detector.isEjected('t4', back)).toBe(false);
    expect(detector.ejectionCount('t4')).toBe(1);
  });

  it('reports each known target for metrics, and forgets targets that left', () => {
    const detector = detectorOf(3, { maxEjectionPercent: 50 });
    fail(detector, 't1', 5, start);
    expect(detector.state(start)).toEqual([
      { targetId: 't0', ejected: false, times: 0 },
      { targetId: 't1', ejected: true, until: start + 30_000, times: 1 },
      { targetId: 't2', ejected: false, times: 0 },
    ]);
    expect(detector.state(start + 30_000)[1]).toEqual({ targetId: 't1', ejected: false, times: 1 });
    expect(detector.ejectionCount('unknown')).toBe(0);

    detector.forget('t2');
    // Two known targets left, t1 still ejected: t0 is the last healthy one.
    fail(detector, 't0', 5, start + 1);
    expect(detector.isEjected('t0', start + 1)).toBe(false);
    expect(detector.state(start + 1).map((entry) => entry.targetId)).toEqual(['t0', 't1']);
  });

  it('rejects options that make no sense', () => {
    expect(() => new OutlierDetector({ consecutiveFailures: 0 })).toThrow(RangeError);
    expect(() => new OutlierDetector({ maxEjectionPercent: 150 })).toThrow(RangeError);
    expect(() => new OutlierDetector({ failureRatePercent: -1 })).toThrow(RangeError);
  });
});
