import { waitFor } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isSheddable, nextRefusedShare, OverloadShedder, overloadWindowMs } from '../src/overload.ts';
import { call, type Ingress, recordCount, startIngress } from './harness.ts';

describe('nextRefusedShare', () => {
  it('refuses nothing while the loop keeps to its bound', () => {
    expect(nextRefusedShare(0, 0, 0, 100)).toBe(0);
    expect(nextRefusedShare(0, 99, 99, 100)).toBe(0);
  });

  it('rises while the delay is above the bound, faster the further above, and never refuses everything', () => {
    const slightly = nextRefusedShare(0, 150, 150, 100);
    const far = nextRefusedShare(0, 500, 500, 100);
    expect(slightly).toBeGreaterThan(0);
    expect(far).toBeGreaterThan(slightly);
    let share = 0;
    for (let i = 0; i < 100; i += 1) share = nextRefusedShare(share, 10_000, 10_000, 100);
    expect(share).toBeLessThan(1);
    expect(share).toBeGreaterThan(0.9);
  });

  it('rises on a growing delay before it is far above the bound, and holds while the delay sits at the bound', () => {
    expect(nextRefusedShare(0, 110, 10, 100)).toBeGreaterThan(nextRefusedShare(0, 110, 110, 100));
    expect(nextRefusedShare(0.4, 100, 100, 100)).toBeCloseTo(0.4, 5);
  });

  it('falls back to 0 once the loop is on time again', () => {
    let share = 0.9;
    let windows = 0;
    while (share > 0 && windows < 1_000) {
      share = nextRefusedShare(share, 5, 5, 100);
      windows += 1;
    }
    expect(share).toBe(0);
    // About a second of calm at the 100 ms window, not minutes.
    expect(windows).toBeLessThanOrEqual(12);
  });
});

describe('isSheddable', () => {
  it('is new work only: submissions, batches and the /r/ forms, never lookups, health or metrics', () => {
    expect(isSheddable('POST', '/v1/requests')).toBe(true);
    expect(isSheddable('POST', '/v1/requests?x=1')).toBe(true);
    expect(isSheddable('POST', '/v1/batches')).toBe(true);
    expect(isSheddable('GET', '/r/echo/orders')).toBe(true);
    expect(isSheddable('GET', '/v1/requests/abc')).toBe(false);
    expect(isSheddable('POST', '/v1/requests/abc/redrive')).toBe(false);
    expect(isSheddable('GET', '/healthz')).toBe(false);
    expect(isSheddable('GET', '/readyz')).toBe(false);
    expect(isSheddable('GET', '/metrics')).toBe(false);
    expect(isSheddable(undefined, undefined)).toBe(false);
    // A submission that holds for its result is bounded by the queue, not by this replica's in-flight count.
    expect(isSheddable('POST', '/v1/requests', 'wait=10')).toBe(false);
    expect(isSheddable('POST', '/v1/requests', 'respond-async, wait=5')).toBe(false);
    expect(isSheddable('POST', '/v1/requests', 'respond-async')).toBe(true);
  });
});

describe('OverloadShedder', () => {
  it('acts on a loop that runs late window after window, not on one pause', () => {
    const shedder = new OverloadShedder({ boundMs: () => 50, random: () => 0 });
    shedder.observe(2_000);
    shedder.observe(0);
    shedder.observe(0);
    expect(shedder.admit()).toBeUndefined();
    shedder.done();
    for (let i = 0; i < 3; i += 1) shedder.observe(300);
    expect(shedder.state.delayMs).toBe(300);
    expect(shedder.admit()).toBe("this replica's event loop runs 300 ms late");
    expect(shedder.state.refused).toBe(1);
    expect(shedder.state.inFlight).toBe(0);
  });

  it('admits up to its bound of submissions in flight, refuses the next, and admits again once one is answered', () => {
    let bound = 2;
    const shedder = new OverloadShedder({ boundMs: () => 100, maxInFlight: () => bound });
    expect(shedder.admit()).toBeUndefined();
    expect(shedder.admit()).toBeUndefined();
    expect(shedder.admit()).toBe('this replica is handling 2 submissions, its most at once');
    expect(shedder.state).toMatchObject({ inFlight: 2, refused: 1 });
    shedder.done();
    expect(shedder.admit()).toBeUndefined();
    // The bound is read at every submission: a reloaded gateway file applies at once.
    bound = 4;
    expect(shedder.admit()).toBeUndefined();
    expect(shedder.state.inFlight).toBe(3);
  });

  it('refuses about the share it keeps', () => {
    let draw = 0;
    // An even spread over [0, 1) stands in for Math.random.
    const random = () => {
      draw = (draw + 0.618034) % 1;
      return draw;
    };
    const shedder = new OverloadShedder({ boundMs: () => 100, random });
    for (let i = 0; i < 3; i += 1) shedder.observe(140);
    const share = shedder.state.refusedShare;
    expect(share).toBeGreaterThan(0);
    let refused = 0;
    for (let i = 0; i < 10_000; i += 1) {
      if (shedder.admit() === undefined) shedder.done();
      else refused += 1;
    }
    expect(refused / 10_000).toBeCloseTo(share, 1);
  });

  it('measures the lateness of its own timer: a loop kept busy makes it refuse, a calm one stops it', async () => {
    const shedder = new OverloadShedder({ boundMs: () => 20, random: () => 0 });
    shedder.start();
    // Every tick of this timer keeps the loop busy for one and a half windows: the loop runs late, steadily.
    const busy = setInterval(() => {
      const until = performance.now() + overloadWindowMs * 1.5;
      while (performance.now() < until) {
        // Busy on purpose.
      }
    }, overloadWindowMs);
    try {
      await waitFor('the shedder to refuse', () => shedder.state.refusedShare > 0, { timeoutMs: 20_000 });
      expect(shedder.state.delayMs).toBeGreaterThan(20);
    } finally {
      clearInterval(busy);
    }
    await waitFor('the shedder to stop refusing', () => shedder.state.refusedShare === 0, {
      timeoutMs: 20_000,
    });
    expect(shedder.admit()).toBeUndefined();
    shedder.stop();
  });
});

describe('an ingress past its capacity', () => {
  const shedder = new OverloadShedder({ boundMs: () => 100, random: () => 0 });
  let ingress: Ingress;
  beforeAll(async () => {
    ingress = await startIngress(undefined, undefined, undefined, undefined, undefined, undefined, shedder);
  });
  afterAll(async () => {
    await ingress?.close();
  });

  const submission = { route: 'echo', method: 'POST', path: '/orders', body: { sku: 'a-1' } };

  it('refuses new submissions at once with 503 at-capacity and Retry-After, enqueues nothing, and keeps answering lookups', async () => {
    const accepted = await call(ingress, '/v1/requests', { json: submission });
    expect(accepted.status).toBe(202);
    const { id } = (await accepted.json()) as { id: string };
    const before = await recordCount(ingress.kafka, ingress.topic('requests'));

    for (let i = 0; i < 3; i += 1) shedder.observe(1_000);
    const refused = [
      await call(ingress, '/v1/requests', { json: submission }),
      await call(ingress, '/v1/batches', { json: { requests: [submission] } }),
      await call(ingress, '/r/echo/orders', { method: 'POST', body: 'x' }),
      // Refused before authentication: a replica past its capacity does not spend a key check on it either.
      await call(ingress, '/v1/requests', { key: null, json: submission }),
    ];
    for (const answer of refused) {
      expect(answer.status).toBe(503);
      expect(answer.headers.get('content-type')).toBe('application/problem+json');
      expect(answer.headers.get('retry-after')).toBe('1');
      expect(await answer.json()).toMatchObject({
        type: 'urn:sluice:problem:at-capacity',
        status: 503,
        detail: "this replica's event loop runs 1000 ms late; nothing was accepted, try again shortly",
      });
    }
    expect((await call(ingress, `/v1/requests/${id}`)).status).toBe(200);
    expect(shedder.state.inFlight).toBe(0);
    expect((await call(ingress, '/healthz', { key: null })).status).toBe(200);
    expect(await recordCount(ingress.kafka, ingress.topic('requests'))).toBe(before);
    // A submission that holds for its result is not this replica's load to shed: no worker runs here, so it is
    // accepted and answered 202 when its wait is over.
    const held = await call(ingress, '/v1/requests', { json: submission, headers: { prefer: 'wait=1' } });
    expect(held.status).toBe(202);

    let windows = 0;
    while (shedder.state.refusedShare > 0 && windows < 100) {
      shedder.observe(0);
      windows += 1;
    }
    expect((await call(ingress, '/v1/requests', { json: submission })).status).toBe(202);
  });
});
