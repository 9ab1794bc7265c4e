import { hashApiKey } from '@sluice/gateway-config';
import { waitFor } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  call,
  gatewayYaml,
  type Ingress,
  keys,
  recordCount,
  SettableBacklog,
  SettableQueue,
  startIngress,
} from './harness.ts';

const limitedKey = 'sk_test_initech_0123456789';
const yaml = `${gatewayYaml.replace(
  'admins:',
  `  initech:
    apiKeys: [{ id: initech-test, sha256: ${hashApiKey(limitedKey)} }]
    routes: [echo]
    rateLimit: { requestsPerSecond: 0.5, burst: 3 }
    maxEventStreams: 1
admins:`,
)}backpressure: { shedLag: 100, rejectLag: 1000, maxEventLoopDelayMs: 60000 }
`;

const queue = new SettableQueue();
const backlog = new SettableBacklog();
let ingress: Ingress;
beforeAll(async () => {
  ingress = await startIngress(undefined, yaml, queue, undefined, backlog);
});
afterAll(async () => {
  await ingress?.close();
});

const submission = { route: 'echo', method: 'POST', path: '/orders', body: { sku: 'a-1' } };
const submit = (key: string) => call(ingress, '/v1/requests', { key, json: submission });

describe("a tenant's rate limit", () => {
  it('lets the burst through with RateLimit headers, then answers 429 with Retry-After and enqueues nothing', async () => {
    const answers = [];
    for (let i = 0; i < 3; i += 1) answers.push(await submit(limitedKey));
    expect(answers.map((r) => r.status)).toEqual([202, 202, 202]);
    expect(answers.map((r) => r.headers.get('ratelimit-remaining'))).toEqual(['2', '1', '0']);
    expect(answers[0]?.headers.get('ratelimit-limit')).toBe('3');
    expect(answers[0]?.headers.get('ratelimit-policy')).toBe('3;w=6');
    const before = await recordCount(ingress.kafka, ingress.topic('requests'));

    const refused = await submit(limitedKey);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('content-type')).toContain('application/problem+json');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(2);
    expect(refused.headers.get('ratelimit-remaining')).toBe('0');
    expect(await refused.json()).toMatchObject({ type: 'urn:sluice:problem:rate-limited', status: 429 });
    // The transparent form and batches count too; a batch larger than the burst can never go.
    expect((await call(ingress, '/r/echo/x', { key: limitedKey, method: 'POST', body: 'x' })).status).toBe(
      429,
    );
    const tooBig = await call(ingress, '/v1/batches', {
      key: limitedKey,
      json: { requests: [submission, submission, submission, submission] },
    });
    expect(tooBig.status).toBe(413);
    expect(await recordCount(ingress.kafka, ingress.topic('requests'))).toBe(before);
    // Another tenant is not limited by it.
    expect((await submit(keys.acme)).status).toBe(202);
  });
});

describe('backpressure', () => {
  it('refuses a Prefer: wait submission with 503 while the queue ahead would keep it from a worker past maxQueueWaitMs, and still queues one that does not wait', async () => {
    queue.waitMs = 9_000;
    const before = await recordCount(ingress.kafka, ingress.topic('requests'));
    const held = await call(ingress, '/v1/requests', {
      key: keys.globex,
      json: submission,
      headers: { prefer: 'wait=5' },
    });
    expect(held.status).toBe(503);
    expect(held.headers.get('retry-after')).toBe('7');
    expect(await held.json()).toMatchObject({
      type: 'urn:sluice:problem:overloaded',
      detail: expect.stringContaining('about 9000 ms to reach a worker, above the bound of 5000 ms'),
    });
    const transparent = await call(ingress, '/r/echo/orders', {
      key: keys.globex,
      method: 'POST',
      body: 'x',
      headers: { prefer: 'wait=5' },
    });
    expect(transparent.status).toBe(503);
    expect(await recordCount(ingress.kafka, ingress.topic('requests'))).toBe(before);

    // The same request without Prefer: wait is what the queue is for.
    expect((await submit(keys.globex)).status).toBe(202);
    // An unknown estimate (no drain rate measured yet) refuses nothing.
    queue.waitMs = null;
    const unknown = await call(ingress, '/v1/requests', {
      key: keys.globex,
      json: submission,
      headers: { prefer: 'wait=1' },
    });
    expect(unknown.status).not.toBe(503);
    queue.waitMs = 0;
  });

  it('sheds the heavy tenant with 429 above shedLag, everyone with 503 above rejectLag, and accepts again when the lag falls', async () => {
    // acme sends most of the recent traffic; globex a little.
    for (let i = 0; i < 8; i += 1) expect((await submit(keys.acme)).status).toBe(202);
    expect((await submit(keys.globex)).status).toBe(202);

    queue.lag = 150n;
    const shed = await submit(keys.acme);
    expect(shed.status).toBe(429);
    expect(shed.headers.get('retry-after')).toBe('7');
    expect(await shed.json()).toMatchObject({ type: 'urn:sluice:problem:load-shed' });
    expect((await submit(keys.globex)).status).toBe(202);

    queue.lag = 1000n;
    const before = await recordCount(ingress.kafka, ingress.topic('requests'));
    for (const key of [keys.acme, keys.globex]) {
      const rejected = await submit(key);
      expect(rejected.status).toBe(503);
      expect(rejected.headers.get('retry-after')).toBe('7');
      expect(await rejected.json()).toMatchObject({ type: 'urn:sluice:problem:overloaded' });
    }
    const batch = await call(ingress, '/v1/batches', { key: keys.globex, json: { requests: [submission] } });
    expect(batch.status).toBe(503);
    expect(await recordCount(ingress.kafka, ingress.topic('requests'))).toBe(before);

    queue.lag = 10n;
    expect((await submit(keys.acme)).status).toBe(202);
    expect((await submit(keys.globex)).status).toBe(202);
  });
});

describe('event streams', () => {
  it("holds at most the tenant's number of open streams, and frees a slot when one closes", async () => {
    const accepted = await call(ingress, '/v1/batches', {
      key: keys.acme,
      json: { requests: [submission] },
    });
    const { batchId } = (await accepted.json()) as { batchId: string };
    const open = (key: string) => {
      const controller = new AbortController();
      return call(ingress, `/v1/batches/${batchId}/events`, { key, signal: controller.signal }).then(
        (response) => ({ response, close: () => controller.abort() }),
      );
    };
    // initech may hold one stream, but the batch is acme's: initech sees 404 and holds nothing.
    expect((await open(limitedKey)).response.status).toBe(404);
    const streams = await Promise.all(Array.from({ length: 20 }, () => open(keys.acme)));
    expect(streams.map((s) => s.response.status)).toEqual(Array(20).fill(200));
    const refused = await open(keys.acme);
    expect(refused.response.status).toBe(429);
    expect(await refused.response.json()).toMatchObject({ type: 'urn:sluice:problem:too-many-streams' });
    streams[0]?.close();
    const again = await waitFor('a free stream slot', async () => {
      const stream = await open(keys.acme);
      if (stream.response.status === 200) return stream;
      stream.close();
      return false;
    });
    again.close();
    for (const stream of streams) stream.close();
  });
});

describe('acknowledgements that lag behind', () => {
  it('answers 503 with Retry-After at once while the oldest submission waits past maxAcceptWaitMs, enqueuing nothing', async () => {
    const before = await recordCount(ingress.kafka, ingress.topic('requests'));
    backlog.waitMs = 4_200; // above the default bound of 1,000 ms
    const refused = await submit(keys.acme);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('5');
    expect(await refused.json()).toMatchObject({ type: 'urn:sluice:problem:overloaded', status: 503 });
    // Refused before anything was produced.
    expect(await recordCount(ingress.kafka, ingress.topic('requests'))).toBe(before);
    backlog.waitMs = 900;
    expect((await submit(keys.acme)).status).toBe(202);
    backlog.waitMs = 0;
  });
});
