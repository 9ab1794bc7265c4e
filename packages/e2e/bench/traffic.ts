/**
 * The traffic engine's benchmark. Prints figures; asserts nothing.
 *
 * 1. Coalescing: N requests to an upstream whose cost is per call (a fixed cost plus a little per item, and only
 *    a few calls served at once), sent one call per request and then coalesced into JSON-array calls, in the
 *    same run. Reported: completion time of each and the ratio.
 *
 * Direct mode is measured against nginx by direct.ts.
 *
 *   pnpm bench
 */

import { availableParallelism } from 'node:os';
import { Coalescer, Dispatcher, type RouteTraffic, UpstreamClient, upstreamUrl } from '@sluice/upstream';
import { costlyUpstream } from './costly-upstream.ts';

const requests = Number(process.env.BENCH_COALESCE_REQUESTS ?? 2_000);
const perCallMs = Number(process.env.BENCH_CALL_COST_MS ?? 10);
const perItemMs = Number(process.env.BENCH_ITEM_COST_MS ?? 0.5);
const serverSlots = Number(process.env.BENCH_SERVER_SLOTS ?? 4);
const maxSize = Number(process.env.BENCH_COALESCE_MAX_SIZE ?? 50);

const upstreamSettings = (url: string): RouteTraffic => ({
  concurrency: 64,
  upstream: {
    targets: [{ url, weight: 1 }],
    balancer: 'round-robin',
    locality: false,
    outlierDetection: {
      consecutiveFailures: 5,
      minRequests: 10,
      intervalMs: 10_000,
      baseEjectionMs: 30_000,
      maxEjectionMs: 300_000,
      maxEjectionPercent: 10,
      panicThresholdPercent: 50,
    },
    circuitBreaker: { failureThreshold: 5, openMs: 30_000, halfOpenProbes: 1 },
    retryBudget: { percent: 20, minRetries: 3 },
    adaptive: { enabled: true, decreaseFactor: 0.5 },
  },
});

async function coalescing(): Promise<void> {
  const upstream = await costlyUpstream({ slots: serverSlots, perCallMs, perItemMs });
  const route = upstreamSettings(upstream.url);
  const client = new UpstreamClient({ connections: () => route.concurrency });
  const dispatcher = new Dispatcher({
    client,
    route: () => route,
    minShare: { high: 0, normal: 0.2, low: 0.1 },
    backlogLimit: 100_000,
  });
  const coalescer = new Coalescer(dispatcher, () => ({
    maxSize,
    maxWaitMs: 10,
    path: '/batch',
    itemStatusField: 'status',
  }));
  const signal = () => AbortSignal.timeout(600_000);
  const body = Buffer.from('{"sku":"a-1"}');

  const singleStarted = performance.now();
  const callsBefore = upstream.calls();
  await Promise.all(
    Array.from({ length: requests }, (_, i) =>
      dispatcher.send(
        {
          route: 'bench',
          tenant: 'acme',
          lane: 'normal',
          isRetry: false,
          call: (target) => ({
            upstream: 'bench',
            url: upstreamUrl(target.url, `/item/${i}`),
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body,
            timeoutMs: 600_000,
            maxResponseBytes: 1_024,
            idempotencyKey: `single-${i}`,
          }),
        },
        signal(),
      ),
    ),
  );
  const singleMs = performance.now() - singleStarted;
  const singleCalls = upstream.calls() - callsBefore;

  const coalescedStarted = performance.now();
  const batchCallsBefore = upstream.calls();
  const results = await Promise.all(
    Array.from({ length: requests }, (_, i) =>
      coalescer.send(
        'bench',
        {
          id: `c-${i}`,
          tenant: 'acme',
          lane: 'normal',
          isRetry: false,
          body,
          timeoutMs: 600_000,
          maxResponseBytes: 1_024,
        },
        signal(),
      ),
    ),
  );
  const coalescedMs = performance.now() - coalescedStarted;
  const coalescedCalls = upstream.calls() - batchCallsBefore;
  const failed = results.filter((r) => r.outcome.kind !== 'response' || r.outcome.status !== 200).length;
  console.log(
    `coalescing: ${requests} requests; upstream serves ${serverSlots} calls at once, each ${perCallMs} ms + ${perItemMs} ms per item`,
  );
  console.log(`| mode | upstream calls | time s | requests/s |\n| --- | ---: | ---: | ---: |`);
  console.log(
    `| one call per request | ${singleCalls} | ${(singleMs / 1000).toFixed(2)} | ${((requests / singleMs) * 1000).toFixed(0)} |`,
  );
  console.log(
    `| coalesced (maxSize ${maxSize}, maxWaitMs 10) | ${coalescedCalls} | ${(coalescedMs / 1000).toFixed(2)} | ${((requests / coalescedMs) * 1000).toFixed(0)} |`,
  );
  console.log(
    `coalesced / one-per-request throughput ratio: ${(singleMs / coalescedMs).toFixed(1)}× (${failed} items not 200)\n`,
  );
  dispatcher.close();
  await client.close();
  await upstream.close();
}

console.log(`machine: ${availableParallelism()} cores, Node ${process.version}\n`);
await coalescing();
process.exit(0);
