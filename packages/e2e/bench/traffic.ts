/**
 * The traffic engine's benchmark. Prints figures; asserts nothing.
 *
 * 1. Coalescing: N requests to an upstream whose cost is per call (a fixed cost plus a little per item, and only
 *    a few calls served at once), sent one call per request and then coalesced into JSON-array calls, in the
 *    same run. Reported: completion time of each and the ratio.
 * 2. Direct mode: a load of small requests straight to an upstream, then through the ingress's direct mode to the
 *    same upstream, alternating. Reported: requests/s, p50, p99 and the ratio.
 *
 *   pnpm bench      (the direct-mode part starts a broker for the ingress unless KAFKA_BROKERS is set)
 */

import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashApiKey } from '@sluice/gateway-config';
import { ServiceProcess, startKafka, uniqueName } from '@sluice/testkit';
import { Coalescer, Dispatcher, type RouteTraffic, UpstreamClient, upstreamUrl } from '@sluice/upstream';
import { Pool } from 'undici';

const requests = Number(process.env.BENCH_COALESCE_REQUESTS ?? 2_000);
const perCallMs = Number(process.env.BENCH_CALL_COST_MS ?? 10);
const perItemMs = Number(process.env.BENCH_ITEM_COST_MS ?? 0.5);
const serverSlots = Number(process.env.BENCH_SERVER_SLOTS ?? 4);
const maxSize = Number(process.env.BENCH_COALESCE_MAX_SIZE ?? 50);
const directSeconds = Number(process.env.BENCH_DIRECT_SECONDS ?? 5);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 32);

/** An upstream that serves `serverSlots` calls at once, each costing perCallMs + perItemMs × items. */
async function costlyUpstream() {
  let busy = 0;
  const queue: Array<() => void> = [];
  const slot = () =>
    new Promise<void>((resolve) => {
      if (busy < serverSlots) {
        busy += 1;
        resolve();
      } else {
        queue.push(() => {
          busy += 1;
          resolve();
        });
      }
    });
  const free = () => {
    busy -= 1;
    queue.shift()?.();
  };
  let calls = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', async () => {
      calls += 1;
      const items = req.url?.startsWith('/batch') ? (JSON.parse(body) as unknown[]) : undefined;
      await slot();
      setTimeout(
        () => {
          free();
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(items === undefined ? { ok: true } : items.map(() => ({ ok: true }))));
        },
        perCallMs + perItemMs * (items?.length ?? 1),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls: () => calls,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

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
  const upstream = await costlyUpstream();
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

interface Load {
  perSecond: number;
  p50: number;
  p99: number;
}

async function load(url: string, path: string, headers: Record<string, string>): Promise<Load> {
  const pool = new Pool(url, { connections });
  const latencies: number[] = [];
  const until = performance.now() + directSeconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < until) {
        const sent = performance.now();
        const response = await pool.request({ path, method: 'GET', headers });
        await response.body.dump();
        if (response.statusCode === 200) latencies.push(performance.now() - sent);
      }
    }),
  );
  const elapsed = performance.now() - started;
  await pool.close();
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.floor(q * (latencies.length - 1))] ?? 0;
  return { perSecond: (latencies.length / elapsed) * 1000, p50: at(0.5), p99: at(0.99) };
}

async function directMode(): Promise<void> {
  const upstream = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const upstreamUrlText = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const kafka = await startKafka();
  const dir = await mkdtemp(join(tmpdir(), 'sluice-bench-direct-'));
  const configPath = join(dir, 'gateway.yaml');
  const key = 'sk_bench_direct_0123456789';
  await writeFile(
    configPath,
    `version: 1
tenants:
  acme:
    apiKeys: [{ id: bench, sha256: ${hashApiKey(key)} }]
    routes: [direct]
routes:
  direct:
    mode: direct
    concurrency: ${connections}
    upstream: { targets: [{ url: "${upstreamUrlText}" }] }
`,
  );
  const ingress = await ServiceProcess.start({
    name: 'ingress',
    env: {
      KAFKA_BROKERS: kafka.bootstrap,
      KAFKA_TOPIC_PREFIX: `${uniqueName('bench-direct')}.`,
      KAFKA_TOPIC_PARTITIONS: '1',
      SLUICE_GATEWAY_CONFIG: configPath,
      LOG_LEVEL: 'warn',
    },
  });
  await ingress.waitReady();
  const auth = { authorization: `Bearer ${key}` };
  await load(upstreamUrlText, '/item', {});
  await load(ingress.url, '/r/direct/item', auth);
  const rounds: Array<{ straight: Load; direct: Load }> = [];
  for (let round = 0; round < 2; round += 1) {
    const straight = await load(upstreamUrlText, '/item', {});
    const direct = await load(ingress.url, '/r/direct/item', auth);
    rounds.push({ straight, direct });
    console.log(
      `round ${round + 1}: straight ${straight.perSecond.toFixed(0)}/s p50 ${straight.p50.toFixed(2)} ms p99 ${straight.p99.toFixed(2)} ms; direct mode ${direct.perSecond.toFixed(0)}/s p50 ${direct.p50.toFixed(2)} ms p99 ${direct.p99.toFixed(2)} ms`,
    );
  }
  const best = (pick: (r: { straight: Load; direct: Load }) => Load) =>
    rounds.map(pick).sort((a, b) => b.perSecond - a.perSecond)[0] as Load;
  const straight = best((r) => r.straight);
  const direct = best((r) => r.direct);
  console.log(`\ndirect mode: ${connections} connections, ${directSeconds} s per round, small JSON answers`);
  console.log('| path | requests/s | p50 ms | p99 ms |\n| --- | ---: | ---: | ---: |');
  console.log(
    `| straight to the upstream | ${straight.perSecond.toFixed(0)} | ${straight.p50.toFixed(2)} | ${straight.p99.toFixed(2)} |`,
  );
  console.log(
    `| through the ingress, direct mode | ${direct.perSecond.toFixed(0)} | ${direct.p50.toFixed(2)} | ${direct.p99.toFixed(2)} |`,
  );
  console.log(`direct / straight throughput ratio: ${(direct.perSecond / straight.perSecond).toFixed(2)}`);
  await ingress.stop();
  await kafka.stop();
  upstream.close();
}

console.log(`machine: ${availableParallelism()} cores, Node ${process.version}\n`);
await coalescing();
await directMode();
process.exit(0);
