import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  Coalescer,
  Dispatcher,
  type DispatchRequest,
  type Lane,
  PartitionPauser,
  type RouteTraffic,
  UpstreamClient,
  upstreamUrl,
} from '../src/index.ts';

const servers: Server[] = [];
const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

/** A real HTTP server whose behaviour the test can change while it runs. */
async function upstream(initial: Handler) {
  let handler = initial;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => handler(req, res, body));
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    set: (next: Handler) => {
      handler = next;
    },
  };
}

const ok: Handler = (_req, res) => res.end('ok');
const status =
  (code: number, headers: Record<string, string> = {}): Handler =>
  (_req, res) => {
    res.writeHead(code, headers);
    res.end();
  };

const baseUpstream = {
  balancer: 'round-robin' as const,
  locality: false,
  outlierDetection: {
    consecutiveFailures: 5,
    minRequests: 10,
    intervalMs: 10_000,
    baseEjectionMs: 300,
    maxEjectionMs: 3_000,
    maxEjectionPercent: 50,
    panicThresholdPercent: 0,
  },
  circuitBreaker: { failureThreshold: 50, openMs: 200, halfOpenProbes: 1 },
  retryBudget: { percent: 20, minRetries: 3 },
  adaptive: { enabled: true, decreaseFactor: 0.5 },
};

function route(
  targets: string[],
  overrides: Partial<RouteTraffic['upstream']> = {},
  concurrency = 32,
): RouteTraffic {
  return {
    upstream: { ...baseUpstream, targets: targets.map((url) => ({ url, weight: 1 })), ...overrides },
    concurrency,
  };
}

function dispatcherFor(
  config: RouteTraffic,
  extra: Partial<ConstructorParameters<typeof Dispatcher>[0]> = {},
) {
  const client = new UpstreamClient({ connections: () => config.concurrency });
  closers.push(() => client.close());
  const dispatcher = new Dispatcher({
    client,
    route: () => config,
    minShare: { high: 0, normal: 0.2, low: 0.1 },
    backlogLimit: 1_000,
    ...extra,
  });
  closers.push(() => dispatcher.close());
  return dispatcher;
}

const send = (dispatcher: Dispatcher, overrides: Partial<DispatchRequest> = {}, path = '/x') =>
  dispatcher.send(
    {
      route: 'r',
      tenant: 'acme',
      lane: 'normal',
      isRetry: false,
      call: (target) => ({
        upstream: 'r',
        url: upstreamUrl(target.url, path),
        method: 'GET',
        headers: (overrides.isRetry ? { 'x-retry': '1' } : {}) as Record<string, string>,
        timeoutMs: 2_000,
        maxResponseBytes: 1_024,
        idempotencyKey: 'k',
      }),
      ...overrides,
    },
    AbortSignal.timeout(20_000),
  );

describe('outlier ejection against real servers', () => {
  it('ejects a failing target after 5 consecutive failures, sends everything to the healthy one, and takes it back', async () => {
    // The ejection lasts 300 ms of the dispatcher's clock, which moves only when the test moves it: 30 calls on a
    // slow machine can take longer than 300 ms of wall time, and must still all fall inside the ejection.
    let clockMs = Date.now();
    const healthy = await upstream(ok);
    const failing = await upstream(status(500));
    const dispatcher = dispatcherFor(route([healthy.url, failing.url]), { now: () => clockMs });
    const targets: string[] = [];
    for (let i = 0; i < 30; i += 1) targets.push((await send(dispatcher)).target.url);
    const firstTen = targets.slice(0, 10);
    expect(firstTen.filter((t) => t === failing.url)).toHaveLength(5);
    expect(targets.slice(10).every((t) => t === healthy.url)).toBe(true);
    failing.set(ok);
    clockMs += 350;
    const later: string[] = [];
    for (let i = 0; i < 10; i += 1) later.push((await send(dispatcher)).target.url);
    expect(later.filter((t) => t === failing.url).length).toBeGreaterThanOrEqual(4);
  });
});

describe('circuit breaker', () => {
  it('opens after consecutive failures, holds tries while open, half-opens for one probe and closes on success', async () => {
    const target = await upstream(status(503));
    const transitions: string[] = [];
    const config = route([target.url], {
      circuitBreaker: { failureThreshold: 3, openMs: 300, halfOpenProbes: 1 },
      outlierDetection: { ...baseUpstream.outlierDetection, consecutiveFailures: 1_000 },
    });
    const pauses: string[] = [];
    const pauser = new PartitionPauser(
      (tps) => pauses.push(...tps.map((tp) => `pause ${tp.partition}`)),
      (tps) => pauses.push(...tps.map((tp) => `resume ${tp.partition}`)),
    );
    // The breaker stays open for 300 ms of the dispatcher's clock, which the test moves: how long the calls
    // take on this machine must not decide whether it is still open when the probe comes.
    let clockMs = Date.now();
    const dispatcher = dispatcherFor(config, {
      pauser,
      onCircuitTransition: (_route, _target, from, to) => transitions.push(`${from}->${to}`),
      now: () => clockMs,
    });
    for (let i = 0; i < 3; i += 1)
      expect((await send(dispatcher)).outcome).toMatchObject({ kind: 'response', status: 503 });
    expect(transitions).toEqual(['closed->open']);
    expect(dispatcher.upstream('r').isDown(clockMs)).toBe(true);
    target.set(ok);
    // Held while open (the partition it came from is paused), then sent as the half-open probe.
    const probe = send(dispatcher, { source: { topic: 'requests', partition: 4 } });
    await vi.waitFor(() => expect(pauses).toEqual(['pause 4']));
    expect(transitions).toEqual(['closed->open']);
    clockMs += 300;
    expect((await probe).outcome).toMatchObject({ kind: 'response', status: 200 });
    expect(transitions).toEqual(['closed->open', 'open->half-open', 'half-open->closed']);
    expect(pauses).toEqual(['pause 4', 'resume 4']);
  });
});

describe('retry budget', () => {
  it('keeps retries in flight within 20% of active requests (at least 3) during a total outage', async () => {
    let retriesInFlight = 0;
    let maxRetriesInFlight = 0;
    const target = await upstream((req, res) => {
      const retry = req.headers['x-retry'] === '1';
      if (retry) retriesInFlight += 1;
      maxRetriesInFlight = Math.max(maxRetriesInFlight, retriesInFlight);
      setTimeout(() => {
        if (retry) retriesInFlight -= 1;
        res.writeHead(503);
        res.end();
      }, 50);
    });
    const dispatcher = dispatcherFor(
      route([target.url], {
        circuitBreaker: { failureThreshold: 100_000, openMs: 1, halfOpenProbes: 1 },
        outlierDetection: { ...baseUpstream.outlierDetection, consecutiveFailures: 100_000 },
      }),
    );
    const firsts = Array.from({ length: 20 }, () => send(dispatcher));
    const retries = Array.from({ length: 30 }, () => send(dispatcher, { isRetry: true }));
    const outcomes = await Promise.all([...firsts, ...retries]);
    expect(outcomes).toHaveLength(50);
    // 20 first tries in flight allow max(3, 20% of up to 24 active) = 4 retries at once.
    expect(maxRetriesInFlight).toBeGreaterThan(0);
    expect(maxRetriesInFlight).toBeLessThanOrEqual(4);
  });
});

describe('rate limits', () => {
  it('never lets a target receive more than R·t + B requests in any window t', async () => {
    // Measured where the limiter decides: the clock reading each admission was made with (onAdmit). A call is
    // built only once its caller runs again, which on a busy machine can be long after, and arrival times at a
    // server in this same process bunch calls admitted apart whenever the process stalls.
    const admitted: number[] = [];
    const target = await upstream(ok);
    const rate = 40;
    const burst = 5;
    const dispatcher = dispatcherFor(
      route([target.url], { targetRateLimit: { requestsPerSecond: rate, burst } }),
      { onAdmit: (_route, _target, at) => admitted.push(at) },
    );
    const outcomes = await Promise.all(Array.from({ length: 60 }, () => send(dispatcher)));
    expect(outcomes.filter(({ outcome }) => outcome.kind === 'response')).toHaveLength(60);
    expect(admitted).toHaveLength(60);
    for (const windowMs of [100, 250, 500, 1_000]) {
      for (let i = 0; i < admitted.length; i += 1) {
        const start = admitted[i] as number;
        const inWindow = admitted.filter((at) => at >= start && at < start + windowMs).length;
        // One millisecond for Date.now's resolution.
        expect(inWindow, `window of ${windowMs} ms from admission ${i}`).toBeLessThanOrEqual(
          Math.floor((rate * (windowMs + 1)) / 1000) + burst,
        );
      }
    }
    // The whole run took as long as the rate demands: after the first call and the burst, one call per 1/R.
    expect((admitted.at(-1) as number) - (admitted[0] as number)).toBeGreaterThanOrEqual(
      ((60 - burst - 1) / rate) * 1000 - 1,
    );
  });

  it('lowers the upstream rate after a 429 and climbs back while answers are healthy', async () => {
    let clockMs = Date.now();
    const target = await upstream(status(429, { 'retry-after': '0' }));
    const dispatcher = dispatcherFor(
      route([target.url], { rateLimit: { requestsPerSecond: 100, burst: 10 } }),
      { now: () => clockMs },
    );
    expect(dispatcher.upstream('r').currentRate(clockMs)).toBe(100);
    await send(dispatcher);
    const lowered = dispatcher.upstream('r').currentRate(clockMs) as number;
    expect(lowered).toBeLessThanOrEqual(50);
    target.set(ok);
    for (let i = 0; i < 5; i += 1) await send(dispatcher);
    clockMs += 1_500;
    expect(dispatcher.upstream('r').currentRate(clockMs) as number).toBeGreaterThan(lowered);
  });
});

describe('priority lanes', () => {
  it('drains the high lane first and still gives the low lane its minimum share', async () => {
    const served: Lane[] = [];
    const target = await upstream((req, res) => {
      served.push(req.url?.slice(1) as Lane);
      setTimeout(() => res.end('ok'), 2);
    });
    const dispatcher = dispatcherFor(route([target.url], {}, 1));
    const all = [
      ...Array.from({ length: 150 }, () => send(dispatcher, { lane: 'high' }, '/high')),
      ...Array.from({ length: 150 }, () => send(dispatcher, { lane: 'low' }, '/low')),
    ];
    await Promise.all(all);
    const firstHundred = served.slice(1, 101);
    const low = firstHundred.filter((lane) => lane === 'low').length;
    expect(low).toBeGreaterThanOrEqual(9);
    expect(low).toBeLessThanOrEqual(12);
    expect(firstHundred.filter((lane) => lane === 'high').length).toBeGreaterThanOrEqual(88);
  });
});

describe('coalescing', () => {
  it('sends up to maxSize requests as one JSON-array call and splits the answer, item failures included', async () => {
    const calls: unknown[][] = [];
    const target = await upstream((_req, res, body) => {
      const items = JSON.parse(body) as Array<{ n: number; bad?: boolean }>;
      calls.push(items);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify(
          items.map((item) => (item.bad ? { status: 422, error: 'bad item' } : { doubled: item.n * 2 })),
        ),
      );
    });
    const dispatcher = dispatcherFor(route([target.url]));
    const settings = { maxSize: 5, maxWaitMs: 30, path: '/batch', itemStatusField: 'status' };
    const coalescer = new Coalescer(dispatcher, () => settings);
    const item = (n: number, bad = false) =>
      coalescer.send(
        'r',
        {
          id: `id-${n}`,
          tenant: 'acme',
          lane: 'normal',
          isRetry: false,
          body: Buffer.from(JSON.stringify(bad ? { n, bad } : { n })),
          timeoutMs: 1_000,
          maxResponseBytes: 1_024,
        },
        AbortSignal.timeout(5_000),
      );
    const results = await Promise.all(Array.from({ length: 12 }, (_, n) => item(n, n === 7)));
    expect(calls.map((call) => call.length)).toEqual([5, 5, 2]);
    results.forEach(({ outcome }, n) => {
      expect(outcome.kind).toBe('response');
      if (outcome.kind !== 'response') return;
      if (n === 7) {
        expect(outcome.status).toBe(422);
      } else {
        expect(outcome.status).toBe(200);
        expect(JSON.parse(outcome.body.toString())).toEqual({ doubled: n * 2 });
      }
    });
  });

  it('gives every item of a timed-out batch call the timeout, and a mismatched answer a batch error', async () => {
    const target = await upstream((_req, res, body) => {
      const items = JSON.parse(body) as Array<{ hang?: boolean }>;
      if (items.some((item) => item.hang)) return;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('[1]');
    });
    const dispatcher = dispatcherFor(route([target.url]));
    const coalescer = new Coalescer(dispatcher, () => ({
      maxSize: 3,
      maxWaitMs: 20,
      path: '/',
      itemStatusField: 'status',
    }));
    const item = (body: unknown) =>
      coalescer.send(
        'r',
        {
          id: JSON.stringify(body),
          tenant: 'acme',
          lane: 'normal',
          isRetry: false,
          body: Buffer.from(JSON.stringify(body)),
          timeoutMs: 200,
          maxResponseBytes: 1_024,
        },
        AbortSignal.timeout(5_000),
      );
    const hung = await Promise.all([item({ hang: true }), item({ a: 1 }), item({ a: 2 })]);
    for (const { outcome } of hung)
      expect(outcome).toMatchObject({ kind: 'error', code: 'UPSTREAM_TIMEOUT' });
    const mismatched = await Promise.all([item({ b: 1 }), item({ b: 2 })]);
    for (const { outcome } of mismatched)
      expect(outcome).toMatchObject({ kind: 'error', code: 'UPSTREAM_BATCH_MISMATCH' });
  });
});
