import { describe, expect, it } from 'vitest';
import {
  CircuitBreaker,
  type CircuitState,
  circuitStates,
  defaultCircuitBreakerOptions,
} from '../src/traffic/circuit-breaker.ts';

const start = 1_700_000_000_000;

function recording(options: Partial<ConstructorParameters<typeof CircuitBreaker>[0]> = {}) {
  const transitions: Array<[CircuitState, CircuitState, number]> = [];
  const breaker = new CircuitBreaker({
    ...options,
    onTransition: (from, to, now) => transitions.push([from, to, now]),
  });
  return { breaker, transitions };
}

function failTimes(breaker: CircuitBreaker, times: number, now: number): void {
  for (let i = 0; i < times; i++) breaker.onResult(false, now);
}

describe('CircuitBreaker', () => {
  it('names its states and has the documented defaults', () => {
    expect(circuitStates).toEqual(['closed', 'open', 'half-open']);
    expect(defaultCircuitBreakerOptions).toEqual({ failureThreshold: 5, openMs: 30_000, halfOpenProbes: 1 });
  });

  it('goes closed → open → half-open → closed, reporting each transition', () => {
    const { breaker, transitions } = recording();
    expect(breaker.state(start)).toBe('closed');
    failTimes(breaker, 4, start);
    expect(breaker.canRequest(start)).toBe(true);
    breaker.onResult(false, start + 10);
    expect(breaker.state(start + 10)).toBe('open');
    expect(breaker.canRequest(start + 10)).toBe(false);
    expect(breaker.canRequest(start + 10 + 29_999)).toBe(false);
    expect(transitions).toEqual([['closed', 'open', start + 10]]);

    const probeAt = start + 10 + 30_000;
    expect(breaker.canRequest(probeAt)).toBe(true);
    expect(breaker.state(probeAt)).toBe('half-open');
    breaker.onRequest(probeAt);
    expect(breaker.canRequest(probeAt)).toBe(false);
    breaker.onResult(true, probeAt + 50);
    expect(breaker.state(probeAt + 50)).toBe('closed');
    expect(breaker.canRequest(probeAt + 50)).toBe(true);
    expect(transitions).toEqual([
      ['closed', 'open', start + 10],
      ['open', 'half-open', probeAt],
      ['half-open', 'closed', probeAt + 50],
    ]);
  });

  it('goes half-open → open on a failed probe, for a fresh openMs', () => {
    const { breaker, transitions } = recording({ openMs: 10_000 });
    failTimes(breaker, 5, start);
    const probeAt = start + 10_000;
    expect(breaker.canRequest(probeAt)).toBe(true);
    breaker.onRequest(probeAt);
    const failedAt = probeAt + 2_000;
    breaker.onResult(false, failedAt);
    expect(breaker.state(failedAt)).toBe('open');
    // Counted from the failed probe, not from the first opening.
    expect(breaker.canRequest(probeAt + 10_000)).toBe(false);
    expect(breaker.canRequest(failedAt + 9_999)).toBe(false);
    expect(breaker.canRequest(failedAt + 10_000)).toBe(true);
    expect(transitions.map(([from, to]) => `${from}→${to}`)).toEqual([
      'closed→open',
      'open→half-open',
      'half-open→open',
      'open→half-open',
    ]);
  });

  it('needs consecutive failures: a success in between starts the count again', () => {
    const { breaker } = recording();
    failTimes(breaker, 4, start);
    breaker.onResult(true, start);
    failTimes(breaker, 4, start);
    expect(breaker.state(start)).toBe('closed');
    breaker.onResult(false, start);
    expect(breaker.state(start)).toBe('open');
  });

  it('lets halfOpenProbes probes through at once while half-open', () => {
    const { breaker } = recording({ halfOpenProbes: 2, failureThreshold: 1, openMs: 1_000 });
    breaker.onResult(false, start);
    const probeAt = start + 1_000;
    for (let i = 0; i < 2; i++) {
      expect(breaker.canRequest(probeAt)).toBe(true);
      breaker.onRequest(probeAt);
    }
    expect(breaker.canRequest(probeAt)).toBe(false);
    breaker.onResult(true, probeAt + 1);
    expect(breaker.state(probeAt + 1)).toBe('closed');
  });

  it('ignores late results while open, and counts nothing for requests while closed', () => {
    const { breaker, transitions } = recording({ openMs: 1_000 });
    breaker.onRequest(start);
    failTimes(breaker, 5, start);
    breaker.onResult(true, start + 500);
    expect(breaker.state(start + 500)).toBe('open');
    // The half-open probe slot is free: closed-state requests did not take it.
    expect(breaker.canRequest(start + 1_000)).toBe(true);
    expect(transitions).toHaveLength(2);
  });

  it('starts counting failures afresh after closing again', () => {
    const { breaker } = recording({ openMs: 1_000 });
    failTimes(breaker, 5, start);
    breaker.onRequest(start + 1_000);
    breaker.onResult(true, start + 1_000);
    failTimes(breaker, 4, start + 1_001);
    expect(breaker.state(start + 1_001)).toBe('closed');
  });

  it('rejects options that make no sense', () => {
    expect(() => new CircuitBreaker({ failureThreshold: 0 })).toThrow(RangeError);
    expect(() => new CircuitBreaker({ halfOpenProbes: 0 })).toThrow(RangeError);
    expect(() => new CircuitBreaker({ openMs: -1 })).toThrow(RangeError);
  });
});
