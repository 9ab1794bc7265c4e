import { describe, expect, it } from 'vitest';
import { defaultRetryBudgetOptions, RetryBudget } from '../src/traffic/retry-budget.ts';

function withOriginals(count: number, budget = new RetryBudget()): RetryBudget {
  for (let i = 0; i < count; i++) budget.begin(false);
  return budget;
}

/** Begins retries for as long as the budget allows them; returns how many began. */
function retryGreedily(budget: RetryBudget): number {
  let retries = 0;
  while (budget.canRetry()) {
    budget.begin(true);
    retries++;
  }
  return retries;
}

describe('RetryBudget', () => {
  it('defaults to 20% with a minimum of 3, like Envoy', () => {
    expect(defaultRetryBudgetOptions).toEqual({ percent: 20, minRetries: 3 });
  });

  it('allows only the minimum of 3 retries with 10 requests active', () => {
    const budget = withOriginals(7);
    for (let i = 0; i < 3; i++) budget.begin(true);
    expect(budget.snapshot()).toEqual({ active: 10, retries: 3, limit: 3 });
    expect(budget.canRetry()).toBe(false);
    budget.end(true);
    expect(budget.canRetry()).toBe(true);

    expect(retryGreedily(withOriginals(10))).toBe(3);
  });

  it('allows 20 retries with 100 requests active', () => {
    const budget = withOriginals(81);
    for (let i = 0; i < 19; i++) budget.begin(true);
    expect(budget.snapshot()).toEqual({ active: 100, retries: 19, limit: 20 });
    expect(budget.canRetry()).toBe(true);
    budget.end(false);
    budget.begin(true);
    expect(budget.snapshot()).toEqual({ active: 100, retries: 20, limit: 20 });
    expect(budget.canRetry()).toBe(false);
  });

  it('counts retries as active, so greedy retries on 100 originals settle at 24', () => {
    expect(retryGreedily(withOriginals(100))).toBe(24);
  });

  it('allows minRetries with nothing in flight, and follows the options', () => {
    expect(new RetryBudget().canRetry()).toBe(true);
    expect(retryGreedily(new RetryBudget())).toBe(3);
    expect(retryGreedily(new RetryBudget({ minRetries: 0 }))).toBe(0);
    expect(retryGreedily(withOriginals(100, new RetryBudget({ percent: 50, minRetries: 0 })))).toBe(99);
  });

  it('frees budget as requests end, and never counts below zero', () => {
    const budget = withOriginals(2);
    budget.begin(true);
    budget.end(true);
    budget.end(false);
    budget.end(false);
    budget.end(false);
    budget.end(true);
    expect(budget.snapshot()).toEqual({ active: 0, retries: 0, limit: 3 });
  });

  it('rejects options that make no sense', () => {
    expect(() => new RetryBudget({ percent: 101 })).toThrow(RangeError);
    expect(() => new RetryBudget({ minRetries: -1 })).toThrow(RangeError);
  });
});
