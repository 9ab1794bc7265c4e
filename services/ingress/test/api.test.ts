import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { codecs, recordHeaders } from '@sluice/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApiDocument } from '../src/openapi.ts';
import { call, type Ingress, keys, readTopic, recordCount, startIngress } from './harness.ts';

let ingress: Ingress;
beforeAll(async () => {
  ingress = await startIngress();
});
afterAll(async () => {
  await ingress?.close();
});

const submission = { route: 'echo', method: 'POST', path: '/orders', body: { sku: 'a-1' } };

describe('POST /v1/requests', () => {
  it('answers 202 with the tracking id only after the request, its status and its batch are on Kafka', async () => {
    const response = await call(ingress, '/v1/requests', {
      json: {
        ...submission,
        query: { expand: ['items'] },
        headers: { 'x-trace': '1', 'sluice-tenant': 'forged' },
        key: 'customer-7',
        priority: 'high',
      },
    });
    expect(response.status).toBe(202);
    const body = (await response.json()) as { id: string; status: string; statusUrl: string; queue: unknown };
    expect(body).toMatchObject({
      status: 'queued',
      statusUrl: `/v1/requests/${body.id}`,
      queue: { position: 0, estimatedMs: 0 },
    });
    expect(response.headers.get('location')).toBe(body.statusUrl);
    expect(response.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(response.headers.get('sluice-request-id')).toBe(body.id);

    // A high-priority request goes to the high lane's topic.
    const [record] = (await readTopic(ingress.kafka, ingress.topic('requestsHigh'))).filter(
      (r) => r.headers[recordHeaders.requestId] === body.id,
    );
    expect(record?.key?.toString()).toBe('acme/echo/customer-7');
    expect(record?.headers[recordHeaders.tenant]).toBe('acme');
    const decoded = codecs.request.decode(record ?? { value: null, headers: {} });
    expect(decoded.ok).toBe(true);
    if (!decoded.ok) return;
    expect(decoded.value).toMatchObject({
      id: body.id,
      batchId: body.id,
      tenant: 'acme',
      route: 'echo',
      method: 'POST',
      path: '/orders',
      query: { expand: ['items'] },
      priority: 'high',
      key: 'customer-7',
      body: { encoding: 'utf8', data: '{"sku":"a-1"}' },
      attempts: [],
    });
    // A client cannot forge Sluice's own headers toward the upstream; a JSON body gets its content type.
    expect(decoded.value.headers).toEqual({ 'x-trace': '1', 'content-type': 'application/json' });
    expect(decoded.value.deadlineAt - decoded.value.acceptedAt).toBe(86_400_000);

    const statuses = await readTopic(ingress.kafka, ingress.topic('status'));
    expect(statuses.some((r) => r.key?.toString() === body.id)).toBe(true);
    const accepted = (await readTopic(ingress.kafka, ingress.topic('results')))
      .map((r) => codecs.progress.decode(r))
      .find((d) => d.ok && d.value.kind === 'accepted' && d.value.batchId === body.id);
    expect(accepted?.ok && accepted.value).toMatchObject({ kind: 'accepted', single: true, ids: [body.id] });
  });

  it('lets the submitter look the request up, and nobody else', async () => {
    const { id } = (await (await call(ingress, '/v1/requests', { json: submission })).json()) as {
      id: string;
    };
    const own = await call(ingress, `/v1/requests/${id}`);
    expect(own.status).toBe(200);
    const document = (await own.json()) as Record<string, unknown>;
    expect(document).toMatchObject({ id, batchId: id, route: 'echo', status: 'queued', attempts: 0 });
    expect(new Date((document.timings as { acceptedAt: string }).acceptedAt).getTime()).toBeGreaterThan(0);
    const other = await call(ingress, `/v1/requests/${id}`, { key: keys.globex });
    expect(other.status).toBe(404);
    expect(other.headers.get('content-type')).toContain('application/problem+json');
    expect((await call(ingress, '/v1/requests/0190a7b0-0000-7000-8000-000000000000')).status).toBe(404);
  });

  it('answers a new submission 202 even when it finished before the answer; 200 only within Prefer: wait', async () => {
    // A store that knows every request as succeeded once it knows it at all: the worker was faster than the answer.
    const finished = await startIngress(undefined, undefined, undefined, undefined, undefined, (store) => {
      const getStatus = async (id: string) => {
        const status = await store.getStatus(id);
        return status === undefined ? undefined : { ...status, status: 'succeeded' as const };
      };
      return new Proxy(store, {
        get: (target, property) => {
          if (property === 'getStatus') return getStatus;
          const value: unknown = Reflect.get(target, property);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
    });
    try {
      const accepted = await call(finished, '/v1/requests', { json: submission });
      expect(accepted.status).toBe(202);
      expect(await accepted.json()).toMatchObject({ status: 'queued' });
      const held = await call(finished, '/v1/requests', { json: submission, headers: { prefer: 'wait=5' } });
      expect(held.status).toBe(200);
      expect(await held.json()).toMatchObject({ status: 'succeeded' });
    } finally {
      await finished.close();
    }
  });

  it('holds the connection for Prefer: wait and answers 202 when the request is not done in time', async () => {
    const started = Date.now();
    const response = await call(ingress, '/v1/requests', { json: submission, headers: { prefer: 'wait=1' } });
    expect(response.status).toBe(202);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(response.headers.get('preference-applied')).toBe('wait=1');
  });

  it('returns the original id for a repeated idempotency key with the same content, 422 for other content', async () => {
    const key = `order-${Date.now()}`;
    const before = await recordCount(ingress.kafka, ingress.topic('requests'));
    const first = await call(ingress, '/v1/requests', { json: { ...submission, idempotencyKey: key } });
    const second = await call(ingress, '/v1/requests', {
      json: submission,
      headers: { 'idempotency-key': key },
    });
    const firstId = ((await first.json()) as { id: string }).id;
    expect(second.status).toBe(202);
    expect(((await second.json()) as { id: string }).id).toBe(firstId);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    const conflict = await call(ingress, '/v1/requests', {
      json: { ...submission, path: '/other', idempotencyKey: key },
    });
    expect(conflict.status).toBe(422);
    expect(((await conflict.json()) as { type: string }).type).toBe(
      'urn:sluice:problem:idempotency-conflict',
    );
    expect(await recordCount(ingress.kafka, ingress.topic('requests'))).toBe(before + 1);
  });

  it('decides concurrent duplicates of one key with one enqueued request', async () => {
    const key = `race-${Date.now()}`;
    const before = await recordCount(ingress.kafka, ingress.topic('requests'));
    const responses = await Promise.all(
      Array.from({ length: 20 }, () =>
        call(ingress, '/v1/requests', { json: { ...submission, idempotencyKey: key } }),
      ),
    );
    const ids = new Set(
      await Promise.all(responses.map(async (r) => ((await r.json()) as { id: string }).id)),
    );
    expect(ids.size).toBe(1);
    expect(await recordCount(ingress.kafka, ingress.topic('requests'))).toBe(before + 1);
  });
});

describe('POST /v1/batches and GET /v1/batches/{id}', () => {
  it('accepts a batch and shows its counts and items', async () => {
    const requests = Array.from({ length: 3 }, (_, i) => ({ ...submission, path: `/orders/${i}` }));
    const response = await call(ingress, '/v1/batches', { json: { requests } });
    expect(response.status).toBe(202);
    const body = (await response.json()) as { batchId: string; ids: string[]; statusUrl: string };
    expect(body.ids).toHaveLength(3);
    expect(new Set(body.ids).size).toBe(3);
    expect(response.headers.get('location')).toBe(`/v1/batches/${body.batchId}`);
    const batch = await call(ingress, body.statusUrl);
    expect(batch.status).toBe(200);
    expect(await batch.json()).toMatchObject({
      batchId: body.batchId,
      status: 'open',
      total: 3,
      counts: { queued: 3, processing: 0, succeeded: 0 },
    });
    expect((await call(ingress, body.statusUrl, { key: keys.globex })).status).toBe(404);
  });
});

describe('the transparent form /r/{route}/{path}', () => {
  it('enqueues the HTTP request as it came, without the Sluice key', async () => {
    const response = await fetch(`${ingress.url}/r/echo/items/7?color=red&size=1&size=2`, {
      method: 'PUT',
      headers: {
        authorization: `Bearer ${keys.acme}`,
        'content-type': 'text/plain',
        'x-client': 'legacy',
        'sluice-key': 'k1',
      },
      body: 'plain body',
    });
    expect(response.status).toBe(202);
    const { id } = (await response.json()) as { id: string };
    expect(response.headers.get('sluice-request-id')).toBe(id);
    const record = (await readTopic(ingress.kafka, ingress.topic('requests'))).find(
      (r) => r.headers[recordHeaders.requestId] === id,
    );
    const decoded = codecs.request.decode(record ?? { value: null, headers: {} });
    expect(decoded.ok && decoded.value).toMatchObject({
      method: 'PUT',
      path: '/items/7',
      query: { color: 'red', size: ['1', '2'] },
      key: 'k1',
      body: { encoding: 'utf8', data: 'plain body' },
    });
    if (!decoded.ok) return;
    expect(decoded.value.headers['x-client']).toBe('legacy');
    expect(decoded.value.headers.authorization).toBeUndefined();
    expect(decoded.value.headers['sluice-key']).toBeUndefined();
  });
});

describe('bad input', () => {
  const cases: Array<[string, () => Promise<Response>, number, string]> = [
    [
      'malformed JSON',
      () =>
        call(ingress, '/v1/requests', { body: '{"route":', headers: { 'content-type': 'application/json' } }),
      400,
      'invalid-json',
    ],
    [
      'an unknown field',
      () => call(ingress, '/v1/requests', { json: { ...submission, colour: 'red' } }),
      400,
      'validation',
    ],
    [
      'a missing field',
      () => call(ingress, '/v1/requests', { json: { route: 'echo', path: '/x' } }),
      400,
      'validation',
    ],
    [
      'body and bodyBase64 together',
      () => call(ingress, '/v1/requests', { json: { ...submission, bodyBase64: 'aGk=' } }),
      400,
      'validation',
    ],
    [
      'a path that climbs out of the route',
      () => call(ingress, '/v1/requests', { json: { ...submission, path: '/../admin' } }),
      400,
      'validation',
    ],
    [
      'an unknown route',
      () => call(ingress, '/v1/requests', { json: { ...submission, route: 'nope' } }),
      404,
      'unknown-route',
    ],
    [
      'a route the tenant may not use',
      () => call(ingress, '/v1/requests', { json: { ...submission, route: 'private' } }),
      403,
      'forbidden',
    ],
    [
      'a method the route does not allow',
      () => call(ingress, '/v1/requests', { json: { ...submission, route: 'readonly' } }),
      405,
      'method-not-allowed',
    ],
    [
      'a body over the limit',
      () => call(ingress, '/v1/requests', { json: { ...submission, body: 'x'.repeat(5_000) } }),
      413,
      'too-large',
    ],
    [
      'a request body over the parser limit',
      () => call(ingress, '/v1/requests', { json: { ...submission, body: 'x'.repeat(200_000) } }),
      413,
      'too-large',
    ],
    [
      'too many headers',
      () =>
        call(ingress, '/v1/requests', {
          json: submission,
          headers: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`x-h${i}`, '1'])),
        }),
      431,
      'headers-too-large',
    ],
    [
      'too many headers in the request field',
      () =>
        call(ingress, '/v1/requests', {
          json: {
            ...submission,
            headers: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`x-h${i}`, '1'])),
          },
        }),
      431,
      'headers-too-large',
    ],
    [
      'a batch over 1000',
      () =>
        call(ingress, '/v1/batches', { json: { requests: Array.from({ length: 1001 }, () => submission) } }),
      413,
      'too-large',
    ],
    [
      'an invalid item in a batch',
      () =>
        call(ingress, '/v1/batches', { json: { requests: [submission, { ...submission, route: 'nope' }] } }),
      404,
      'unknown-route',
    ],
    [
      'Prefer: wait above the maximum',
      () => call(ingress, '/v1/requests', { json: submission, headers: { prefer: 'wait=61' } }),
      400,
      'invalid-prefer',
    ],
    [
      'a callback that is not http(s)',
      () =>
        call(ingress, '/v1/requests', {
          json: { ...submission, callback: { url: 'ftp://example.com/hook' } },
        }),
      400,
      'validation',
    ],
    [
      'a callback from a tenant without a webhook secret',
      () =>
        call(ingress, '/v1/requests', {
          key: keys.globex,
          json: { ...submission, callback: { url: 'https://example.com/hook' } },
        }),
      422,
      'callback-not-configured',
    ],
    [
      'no API key',
      () => call(ingress, '/v1/requests', { key: null, json: submission }),
      401,
      'unauthenticated',
    ],
    [
      'an unknown API key',
      () => call(ingress, '/v1/requests', { key: keys.nobody, json: submission }),
      401,
      'unauthenticated',
    ],
    [
      'an admin key on a tenant endpoint',
      () => call(ingress, '/v1/requests', { key: keys.admin, json: submission }),
      403,
      'forbidden',
    ],
    ['an unknown endpoint', () => call(ingress, '/v2/requests', { json: submission }), 404, 'not-found'],
    [
      'a documented path with a method it does not have',
      () => call(ingress, '/v1/batches', { method: 'PUT', json: submission }),
      405,
      'method-not-allowed',
    ],
  ];

  it('answers a documented path asked with another method 405, with the methods it has in Allow', async () => {
    for (const [method, path, allow] of [
      ['DELETE', '/v1/requests/0190f0e2-0000-7000-8000-000000000000', 'GET, HEAD'],
      ['GET', '/v1/requests', 'POST'],
      ['PATCH', '/v1/batches/x/events', 'GET, HEAD'],
      ['GET', '/v1/redrives', 'POST'],
    ] as const) {
      const response = await call(ingress, path, { method });
      expect(response.status, `${method} ${path}`).toBe(405);
      expect(response.headers.get('allow'), `${method} ${path}`).toBe(allow);
    }
    // The methods it has still reach their handlers.
    expect((await call(ingress, '/v1/requests/0190f0e2-0000-7000-8000-000000000000')).status).toBe(404);
  });

  it.each(cases)('%s: a problem document, and nothing enqueued', async (_name, send, status, slug) => {
    const before = await recordCount(ingress.kafka, ingress.topic('requests'));
    const response = await send();
    expect(response.status).toBe(status);
    expect(response.headers.get('content-type')).toContain('application/problem+json');
    const problem = (await response.json()) as { type: string; status: number; title: string };
    expect(problem.type).toBe(`urn:sluice:problem:${slug}`);
    expect(problem.status).toBe(status);
    expect(problem.title.length).toBeGreaterThan(0);
    expect(await recordCount(ingress.kafka, ingress.topic('requests'))).toBe(before);
  });

  it('names the offending fields', async () => {
    const response = await call(ingress, '/v1/requests', {
      json: { route: 'echo', path: 'no-slash', colour: 'red' },
    });
    const problem = (await response.json()) as { errors: Array<{ path: string }> };
    expect(problem.errors.map((e) => e.path).sort()).toEqual(expect.arrayContaining(['method', 'path']));
  });
});

describe('any replica answers any id', () => {
  it('finds a request accepted by another replica at once', async () => {
    const other = await startIngress(ingress.prefix);
    try {
      const { id } = (await (await call(ingress, '/v1/requests', { json: submission })).json()) as {
        id: string;
      };
      const response = await call(other, `/v1/requests/${id}`);
      expect(response.status).toBe(200);
      expect(((await response.json()) as { status: string }).status).toBe('queued');
    } finally {
      await other.close();
    }
  });
});

describe('/openapi.json', () => {
  it('is served, and equals the committed openapi.json generated from the same schemas', async () => {
    const served = await (await fetch(`${ingress.url}/openapi.json`)).json();
    const committed = JSON.parse(await readFile(join(import.meta.dirname, '..', 'openapi.json'), 'utf8'));
    expect(served).toEqual(openApiDocument());
    expect(committed).toEqual(served);
    expect((served as { openapi: string }).openapi).toBe('3.1.0');
  });
});

describe('/metrics', () => {
  const sample = (text: string, name: string, labels: string) =>
    Number(
      text
        .split('\n')
        .find(
          (line) => line.startsWith(`${name}{`) && labels.split(',').every((label) => line.includes(label)),
        )
        ?.split(' ')
        .at(-1) ?? 0,
    );

  it('counts accepted and rejected submissions by route and status, and times accepts', async () => {
    const before = await (await fetch(`${ingress.url}/metrics`)).text();
    await call(ingress, '/v1/requests', { json: submission });
    await call(ingress, '/v1/batches', { json: { requests: [submission, submission] } });
    await call(ingress, '/v1/requests', { json: { ...submission, colour: 'red' } });
    const after = await (await fetch(`${ingress.url}/metrics`)).text();
    const accepted = 'sluice_route="echo"';
    expect(
      sample(after, 'sluice_requests_accepted_total', accepted) -
        sample(before, 'sluice_requests_accepted_total', accepted),
    ).toBe(3);
    const rejected = 'http_response_status_code="400",sluice_route="echo"';
    expect(
      sample(after, 'sluice_requests_rejected_total', rejected) -
        sample(before, 'sluice_requests_rejected_total', rejected),
    ).toBe(1);
    expect(sample(after, 'sluice_ingress_accept_duration_count', accepted)).toBeGreaterThan(0);
    // One single request and one batch of two: one submission in the bucket up to 1, two up to 2.
    expect(
      sample(after, 'sluice_batch_size_bucket', `${accepted},le="2"`) -
        sample(before, 'sluice_batch_size_bucket', `${accepted},le="2"`),
    ).toBe(2);
    expect(
      sample(after, 'sluice_batch_size_bucket', `${accepted},le="1"`) -
        sample(before, 'sluice_batch_size_bucket', `${accepted},le="1"`),
    ).toBe(1);
    expect(after).toMatch(/http_server_request_duration_count\{[^}]*http_route="\/v1\/requests"/);
    expect(after).not.toMatch(/http_route="\/v1\/requests\/[0-9a-f]/);
  });
});
