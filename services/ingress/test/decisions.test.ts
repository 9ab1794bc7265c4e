import { isId, type RequestMessage, type StatusMessage } from '@sluice/contracts';
import { parseGatewayConfig } from '@sluice/gateway-config';
import { describe, expect, it } from 'vitest';
import { canonicalJson, fingerprint, planBatch, withDerivedIds } from '../src/plan.ts';
import { preferredWaitSeconds } from '../src/prefer.ts';
import { HttpProblem } from '../src/problems.ts';
import { estimate, nextDrainRate, pollAfterSeconds, QueueStats, sampleOf } from '../src/queue-stats.ts';
import { matchesFilter, redriveBatch } from '../src/redrive.ts';
import { gatewayYaml } from './harness.ts';

describe('preferredWaitSeconds', () => {
  it('reads wait among other preferences, and flags what is not a number', () => {
    expect(preferredWaitSeconds(undefined)).toBeUndefined();
    expect(preferredWaitSeconds('respond-async')).toBeUndefined();
    expect(preferredWaitSeconds('respond-async, wait=10')).toBe(10);
    expect(preferredWaitSeconds('Wait="5"')).toBe(5);
    expect(preferredWaitSeconds('wait=soon')).toBe('invalid');
    expect(preferredWaitSeconds('wait=-1')).toBe('invalid');
  });
});

describe('queue estimates', () => {
  const lag = (committed: bigint, lagValue: bigint) => ({
    topic: 't',
    partition: 0,
    committed,
    end: committed + lagValue,
    lag: lagValue,
  });

  it('come from the sampled lag and the measured drain rate', () => {
    const first = sampleOf([lag(100n, 50n), lag(200n, 50n)], 0);
    const second = sampleOf([lag(150n, 100n), lag(250n, 100n)], 1_000);
    expect(second).toEqual({ at: 1_000, lag: 200n, committed: 400n });
    const rate = nextDrainRate(undefined, first, second);
    expect(rate).toBe(100);
    expect(estimate(second, rate)).toEqual({ position: 200, estimatedMs: 2_000 });
  });

  it('smooth the rate, ignore intervals that go backwards, and admit when no rate is known', () => {
    const a = { at: 0, lag: 0n, committed: 0n };
    const b = { at: 1_000, lag: 0n, committed: 1_000n };
    expect(nextDrainRate(500, a, b, 0.5)).toBe(750);
    expect(nextDrainRate(500, b, { ...a, at: 2_000 })).toBe(500);
    expect(estimate({ at: 0, lag: 10n, committed: 0n }, undefined)).toEqual({
      position: 10,
      estimatedMs: null,
    });
    expect(estimate({ at: 0, lag: 0n, committed: 0n }, undefined)).toEqual({ position: 0, estimatedMs: 0 });
  });

  it('suggest polling between 1 and 60 seconds', () => {
    expect(pollAfterSeconds(0)).toBe(1);
    expect(pollAfterSeconds(4_200)).toBe(5);
    expect(pollAfterSeconds(3_600_000)).toBe(60);
    expect(pollAfterSeconds(null)).toBe(5);
  });
});

describe('planBatch', () => {
  const { config } = parseGatewayConfig(gatewayYaml);
  const item = (overrides: Record<string, unknown> = {}) => ({
    submitted: { route: 'echo', method: 'POST' as const, path: '/a', ...overrides },
    jsonBody: false,
  });

  it('gives a single request its batch id as id, the route default deadline and a queued status', () => {
    const plan = planBatch({
      config,
      tenant: 'acme',
      items: [item()],
      single: true,
      now: 1_000,
      batchId: 'b-1',
    });
    expect(plan.requests[0]?.message).toMatchObject({
      id: 'b-1',
      batchId: 'b-1',
      deadlineAt: 1_000 + 86_400_000,
      priority: 'normal',
    });
    expect(plan.requests[0]?.status).toMatchObject({ id: 'b-1', status: 'queued', single: true });
    expect(plan.accepted).toMatchObject({ kind: 'accepted', ids: ['b-1'], single: true });
  });

  it('names the offending item of a batch', () => {
    try {
      planBatch({
        config,
        tenant: 'acme',
        items: [item(), item({ route: 'private' })],
        single: false,
        now: 0,
      });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(HttpProblem);
      expect((error as HttpProblem).slug).toBe('forbidden');
      expect((error as HttpProblem).message).toMatch(/^requests\.1: /);
    }
  });

  it('refuses a deadline above the route maximum', () => {
    expect(() =>
      planBatch({ config, tenant: 'acme', items: [item({ deadlineMs: 90_000_000 })], single: true, now: 0 }),
    ).toThrow(/deadlineMs must not exceed/);
  });
});

describe('withDerivedIds', () => {
  const { config } = parseGatewayConfig(gatewayYaml);
  const plan = (single: boolean, tenant = 'acme', count = single ? 1 : 3) =>
    planBatch({
      config,
      tenant,
      items: Array.from({ length: count }, (_, i) => ({
        submitted: { route: 'echo', method: 'POST' as const, path: `/a/${i}` },
        jsonBody: false,
      })),
      single,
      now: 1_000,
    });
  const key = { key: 'order-7', fingerprint: 'f'.repeat(64) };

  it('gives every replica the same ids for one tenant, key and content, and other ids for any other', () => {
    const [a, b] = [withDerivedIds(plan(false), key), withDerivedIds(plan(false), key)];
    expect(a.batchId).toBe(b.batchId);
    expect(a.accepted.ids).toEqual(b.accepted.ids);
    expect(new Set(a.accepted.ids).size).toBe(3);
    expect(isId(a.batchId)).toBe(true);
    const others = [
      withDerivedIds(plan(false, 'globex'), key).batchId,
      withDerivedIds(plan(false), { ...key, key: 'order-8' }).batchId,
      withDerivedIds(plan(false), { ...key, fingerprint: 'e'.repeat(64) }).batchId,
    ];
    expect(new Set([a.batchId, ...others]).size).toBe(4);
  });

  it('rewrites every place an id lives: records, statuses, the announcement; a single request is its batch', () => {
    const derived = withDerivedIds(plan(false), key);
    derived.requests.forEach(({ message, status }, i) => {
      expect(message).toMatchObject({
        id: derived.accepted.ids[i],
        batchId: derived.batchId,
        path: `/a/${i}`,
      });
      expect(status).toMatchObject({ id: message.id, batchId: derived.batchId, status: 'queued' });
    });
    expect(derived.accepted.batchId).toBe(derived.batchId);
    const single = withDerivedIds(plan(true), key);
    expect(single.requests[0]?.message.id).toBe(single.batchId);
    expect(single.accepted.ids).toEqual([single.batchId]);
  });
});

describe('fingerprint', () => {
  it('does not depend on field order, and differs by endpoint and content', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 1, c: 2 }] })).toBe('{"a":[{"c":2,"d":1}],"b":1}');
    expect(fingerprint('request', { a: 1, b: 2 })).toBe(fingerprint('request', { b: 2, a: 1 }));
    expect(fingerprint('request', { a: 1 })).not.toBe(fingerprint('batch', { a: 1 }));
    expect(fingerprint('request', { a: 1 })).not.toBe(fingerprint('request', { a: 2 }));
  });
});

describe('redrives', () => {
  const request: RequestMessage = {
    id: 'r1',
    batchId: 'b1',
    batchSize: 3,
    tenant: 'acme',
    route: 'echo',
    method: 'POST',
    path: '/x',
    query: {},
    headers: {},
    priority: 'normal',
    acceptedAt: 1_000,
    deadlineAt: 61_000,
    attempts: [{ number: 1, startedAt: 2_000, durationMs: 5, status: 503 }],
  };
  const dead: StatusMessage = {
    id: 'r1',
    batchId: 'b1',
    single: false,
    tenant: 'acme',
    route: 'echo',
    status: 'dead',
    attempts: 1,
    timings: { acceptedAt: 1_000 },
    updatedAt: 70_000,
  };

  it('give the request a batch of its own, the next generation, a fresh budget and deadline, and keep its history', () => {
    const first = redriveBatch(request, dead, 1, 100_000, 'ops');
    const message = first.requests[0]?.message as RequestMessage;
    expect(message).toMatchObject({
      id: 'r1',
      batchId: 'r1.r1',
      batchSize: 1,
      deadlineAt: 160_000,
      attempts: [],
    });
    expect(message.redrive).toEqual({
      generation: 1,
      originalBatchId: 'b1',
      redrivenAt: 100_000,
      by: 'ops',
      previousAttempts: request.attempts,
    });
    expect(first.requests[0]?.status).toMatchObject({ status: 'queued', generation: 1, batchId: 'r1.r1' });
    expect(first.accepted).toMatchObject({ ids: ['r1'], generation: 1, single: true, deadlineAt: 160_000 });
    // A second redrive keeps the original batch and adds the tries of the first redrive to the history.
    const second = redriveBatch(
      { ...message, attempts: [{ number: 1, startedAt: 101_000, durationMs: 5, status: 500 }] },
      { ...dead, generation: 1 },
      2,
      200_000,
      'ops',
    ).requests[0]?.message;
    expect(second?.redrive?.originalBatchId).toBe('b1');
    expect(second?.redrive?.previousAttempts).toHaveLength(2);
    expect(second?.batchId).toBe('r1.r2');
  });

  it('match a filter on every given field', () => {
    const deadLetter = {
      reason: 'retries-exhausted' as const,
      detail: '',
      service: 'batch-worker',
      deadLetteredAt: 5_000,
      original: { topic: 't', partition: 0, offset: '0', timestamp: 0, key: null, value: null, headers: {} },
      attempts: [],
    };
    const entry = { request, deadLetter };
    expect(matchesFilter(entry, {})).toBe(true);
    expect(matchesFilter(entry, { tenant: 'acme', route: 'echo', reason: 'retries-exhausted' })).toBe(true);
    expect(matchesFilter(entry, { tenant: 'globex' })).toBe(false);
    expect(matchesFilter(entry, { reason: 'route-unknown' })).toBe(false);
    expect(matchesFilter(entry, { after: 5_000, before: 5_001 })).toBe(true);
    expect(matchesFilter(entry, { before: 5_000 })).toBe(false);
    expect(matchesFilter(entry, { ids: ['r2'] })).toBe(false);
  });
});

describe('QueueStats', () => {
  it('counts what this replica accepted since the last sample, until a sample includes it', async () => {
    let waiting = 10n;
    const stats = new QueueStats(
      async () => [{ topic: 't', partition: 0, committed: 5n, end: 5n + waiting, lag: waiting }],
      60_000,
      (error) => {
        throw error;
      },
    );
    expect(stats.lag).toBeUndefined();
    await stats.start();
    expect(stats.lag).toBe(10n);
    stats.noteAccepted(7);
    expect(stats.lag).toBe(17n);
    waiting = 17n;
    await stats.start();
    expect(stats.lag).toBe(17n);
    stats.stop();
  });

  it('estimates the wait of a request accepted now from the sampled lag and the drain rate', async () => {
    const committed = 0n;
    let waiting = 0n;
    const stats = new QueueStats(
      async () => [{ topic: 't', partition: 0, committed, end: committed + waiting, lag: waiting }],
      60_000,
      (error) => {
        throw error;
      },
    );
    await stats.start();
    // Nothing waiting: no wait, whatever the rate; what this replica accepted since is left out (mostly drained).
    expect(stats.current().estimatedMs).toBe(0);
    stats.noteAccepted(300);
    expect(stats.current().estimatedMs).toBe(0);
    waiting = 400n;
    await stats.start();
    // Something waits but no drain has been seen between samples yet: unknown, not zero.
    expect(stats.current().estimatedMs).toBeNull();
    stats.stop();
  });
});
