import { describe, expect, it } from 'vitest';
import { AdaptiveRate, defaultAdaptiveRateOptions } from '../src/traffic/adaptive-rate.ts';

const start = 1_700_000_000_000;

describe('defaultAdaptiveRateOptions', () => {
  it('derives the floor and the climb from the ceiling', () => {
    expect(defaultAdaptiveRateOptions(1_000)).toEqual({
      maxRatePerSecond: 1_000,
      minRatePerSecond: 10,
      decreaseFactor: 0.5,
      increasePerSecond: 100,
      quietMs: 1_000,
      decreaseCooldownMs: 1_000,
    });
    expect(defaultAdaptiveRateOptions(50).minRatePerSecond).toBe(1);
    // A floor of 1/s would be above a ceiling below it.
    expect(defaultAdaptiveRateOptions(0.5).minRatePerSecond).toBe(0.5);
  });
});

describe('AdaptiveRate', () => {
  it('runs at the ceiling until throttled', () => {
    const rate = new AdaptiveRate({ maxRatePerSecond: 100 });
    expect(rate.current(start)).toBe(100);
    expect(rate.current(start + 3_600_000)).toBe(100);
  });

  it('halves on a throttle and holds for the quiet period', () => {
    const rate = new AdaptiveRate({ maxRatePerSecond: 100 });
    rate.onThrottle(start);
    expect(rate.current(start)).toBe(50);
    expect(rate.current(start + 1_000)).toBe(50);
    expect(rate.current(start + 1_500)).toBe(55);
  });

  it('climbs back to the ceiling linearly, then stays there', () => {
    const rate = new AdaptiveRate({ maxRatePerSecond: 100 });
    rate.onThrottle(start);
    const climbFrom = start + 1_000;
    // 10/s per second: 50 → 100 in 5 s.
    for (const seconds of [0, 1, 2, 2.5, 4, 5]) {
      expect(rate.current(climbFrom + seconds * 1_000)).toBeCloseTo(50 + 10 * seconds, 9);
    }
    expect(rate.current(climbFrom + 60_000)).toBe(100);
  });

  it('decreases from the current rate, not from the rate of the last decrease', () => {
    const rate = new AdaptiveRate({ maxRatePerSecond: 100 });
    rate.onThrottle(start);
    const at = start + 1_000 + 3_000;
    expect(rate.current(at)).toBe(80);
    rate.onThrottle(at);
    expect(rate.current(at)).toBe(40);
  });

  it('floors at the minimum under repeated throttling', () => {
    const rate = new AdaptiveRate({ maxRatePerSecond: 100, minRatePerSecond: 4 });
    const seen: number[] = [];
    for (let i = 0; i < 8; i++) {
      rate.onThrottle(start + i * 1_000);
      seen.push(rate.current(start + i * 1_000));
    }
    expect(seen).toEqual([50, 25, 12.5, 6.25, 4, 4, 4, 4]);
  });

  it('decreases once per cooldown, however many throttles arrive within it, but restarts the quiet period', () => {
    const rate = new AdaptiveRate({ maxRatePerSecond: 100 });
    rate.onThrottle(start);
    rate.onThrottle(start + 10);
    rate.onThrottle(start + 999);
    expect(rate.current(start + 999)).toBe(50);
    // Quiet until a second after the last throttle (start + 1999), not the first.
    expect(rate.current(start + 1_999)).toBe(50);
    expect(rate.current(start + 2_999)).toBeCloseTo(60, 9);

    const eager = new AdaptiveRate({ maxRatePerSecond: 100, decreaseCooldownMs: 0 });
    eager.onThrottle(start);
    eager.onThrottle(start);
    expect(eager.current(start)).toBe(25);
  });

  it('holds the decreased rate until a Retry-After has passed', () => {
    const rate = new AdaptiveRate({ maxRatePerSecond: 100 });
    rate.onThrottle(start, 5_000);
    expect(rate.current(start)).toBe(50);
    expect(rate.current(start + 4_999)).toBe(50);
    expect(rate.current(start + 5_000)).toBe(50);
    expect(rate.current(start + 6_000)).toBeCloseTo(60, 9);
    // A later, shorter Retry-After does not cut the earlier hold short.
    const held = new AdaptiveRate({ maxRatePerSecond: 100 });
    held.onThrottle(start, 10_000);
    held.onThrottle(start + 2_000, 100);
    expect(held.current(start + 9_000)).toBe(25);
    expect(held.current(start + 11_000)).toBeCloseTo(35, 9);
  });

  it('treats healthy responses as no news: the climb is a function of time', () => {
    const rate = new AdaptiveRate({ maxRatePerSecond: 100 });
    rate.onThrottle(start);
    for (let i = 0; i < 100; i++) rate.onHealthy(start + i);
    expect(rate.current(start + 500)).toBe(50);
    expect(rate.current(start + 2_000)).toBeCloseTo(60, 9);
  });

  it('uses its options: factor, climb and quiet period', () => {
    const rate = new AdaptiveRate({
      maxRatePerSecond: 1_000,
      decreaseFactor: 0.8,
      increasePerSecond: 40,
      quietMs: 250,
    });
    rate.onThrottle(start);
    expect(rate.current(start + 250)).toBe(800);
    expect(rate.current(start + 750)).toBeCloseTo(820, 9);
    // The cooldown follows quietMs when not given.
    rate.onThrottle(start + 200);
    expect(rate.current(start + 200)).toBe(800);
    rate.onThrottle(start + 450);
    expect(rate.current(start + 450)).toBe(640);
  });

  it('rejects options that make no sense', () => {
    expect(() => new AdaptiveRate({ maxRatePerSecond: 0 })).toThrow(RangeError);
    expect(() => new AdaptiveRate({ maxRatePerSecond: 10, minRatePerSecond: 20 })).toThrow(RangeError);
    expect(() => new AdaptiveRate({ maxRatePerSecond: 10, decreaseFactor: 1 })).toThrow(RangeError);
    expect(() => new AdaptiveRate({ maxRatePerSecond: 10, quietMs: -1 })).toThrow(RangeError);
  });
});
