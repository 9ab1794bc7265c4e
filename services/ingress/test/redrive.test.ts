import { codecs, type RequestMessage, recordHeaders, statusRecord } from '@sluice/contracts';
import type { ConsumedRecord } from '@sluice/kafka';
import { deadLetterRecord } from '@sluice/runtime';
import { waitFor } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, type Ingress, keys, readTopic, startIngress } from './harness.ts';

let ingress: Ingress;
beforeAll(async () => {
  ingress = await startIngress();
});
afterAll(async () => {
  await ingress?.close();
});

const attempt = { number: 1, startedAt: 1_000, durationMs: 5, status: 503 };

/**
 * A request accepted through the API, then ended dead the way a batch-worker ends it: its record on the
 * dead-letter topic with every try, and a `dead` status.
 */
async function deadRequest(
  key = keys.acme,
  path = '/orders',
): Promise<{ id: string; record: ConsumedRecord }> {
  const response = await call(ingress, '/v1/requests', {
    key,
    json: {
      route: 'echo',
      method: 'POST',
      path,
      body: { n: 1 },
      // globex has no webhook secret, so no callbacks.
      ...(key === keys.acme ? { callback: { url: 'https://hooks.example/x' } } : {}),
    },
  });
  expect(response.status).toBe(202);
  const { id } = (await response.json()) as { id: string };
  const record = (await readTopic(ingress.kafka, ingress.topic('requests'))).find(
    (r) => r.headers[recordHeaders.requestId] === id,
  ) as ConsumedRecord;
  const decoded = codecs.request.decode(record);
  if (!decoded.ok) throw new Error('unreadable request record');
  const request: RequestMessage = decoded.value;
  const producer = ingress.kafka.producer();
  await producer.connect();
  await producer.send([
    deadLetterRecord({
      topic: ingress.topic('deadLetters'),
      service: 'batch-worker',
      record: { ...record, value: codecs.request.encode({ ...request, attempts: [attempt] }).value },
      reason: 'retries-exhausted',
      detail: 'every try answered 503',
      attempts: [attempt],
    }),
    statusRecord(ingress.topic('status'), {
      id,
      batchId: id,
      single: true,
      tenant: request.tenant,
      route: 'echo',
      status: 'dead',
      attempts: 1,
      error: { code: 'retries-exhausted', message: 'every try answered 503' },
      timings: { acceptedAt: request.acceptedAt, finishedAt: Date.now() },
      updatedAt: Date.now(),
    }),
  ]);
  await producer.close();
  await waitFor('the dead status', async () => {
    const status = await call(ingress, `/v1/requests/${id}`, { key });
    return status.status === 200 && ((await status.json()) as { status: string }).status === 'dead';
  });
  return { id, record };
}

describe('POST /v1/requests/{id}/redrive', () => {
  it('sends a dead request again with its id, a batch of its own, the next generation and its history', async () => {
    const { id } = await deadRequest();
    const response = await call(ingress, `/v1/requests/${id}/redrive`, { key: keys.admin, method: 'POST' });
    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({
      id,
      batchId: `${id}.r1`,
      generation: 1,
      statusUrl: `/v1/requests/${id}`,
    });

    const records = (await readTopic(ingress.kafka, ingress.topic('requests'))).filter(
      (r) => r.headers[recordHeaders.requestId] === id,
    );
    expect(records).toHaveLength(2);
    const again = codecs.request.decode(records[1] as ConsumedRecord);
    expect(again.ok && again.value).toMatchObject({
      id,
      batchId: `${id}.r1`,
      path: '/orders',
      attempts: [],
      callback: { url: 'https://hooks.example/x' },
      redrive: { generation: 1, originalBatchId: id, by: 'ops', previousAttempts: [attempt] },
    });
    const announcement = (await readTopic(ingress.kafka, ingress.topic('results'))).find(
      (r) => r.headers[recordHeaders.batchId] === `${id}.r1`,
    );
    const decoded = codecs.progress.decode(announcement as ConsumedRecord);
    expect(decoded.ok && decoded.value).toMatchObject({ kind: 'accepted', ids: [id], generation: 1 });

    // The tenant sees its request queued again, as a redrive.
    const status = await call(ingress, `/v1/requests/${id}`);
    expect(await status.json()).toMatchObject({ id, status: 'queued', redrives: 1, batchId: `${id}.r1` });

    // It is not dead any more: a second redrive is refused, and nothing more is produced.
    const twice = await call(ingress, `/v1/requests/${id}/redrive`, { key: keys.admin, method: 'POST' });
    expect(twice.status).toBe(409);
    expect(await twice.json()).toMatchObject({
      type: 'urn:sluice:problem:not-redrivable',
      reason: 'not-dead',
      requestStatus: 'queued',
    });
  });

  it('is for admin keys only, and answers 404 for a request no dead letter holds', async () => {
    const { id } = await deadRequest();
    expect((await call(ingress, `/v1/requests/${id}/redrive`, { method: 'POST' })).status).toBe(403);
    expect((await call(ingress, `/v1/requests/${id}/redrive`, { method: 'POST', key: null })).status).toBe(
      401,
    );
    const unknown = await call(ingress, '/v1/requests/0190a000-0000-7000-8000-000000000000/redrive', {
      key: keys.admin,
      method: 'POST',
    });
    expect(unknown.status).toBe(404);
    // Still dead: the refused calls changed nothing.
    expect(await (await call(ingress, `/v1/requests/${id}`)).json()).toMatchObject({ status: 'dead' });
  });
});

describe('POST /v1/redrives', () => {
  it('lists with dryRun, then redrives what a filter matches, and refuses a bad filter', async () => {
    const acme = await deadRequest(keys.acme, '/filtered');
    const globex = await deadRequest(keys.globex, '/filtered');
    const dry = await call(ingress, '/v1/redrives', {
      key: keys.admin,
      json: { tenant: 'globex', reason: 'retries-exhausted', dryRun: true },
    });
    expect(dry.status).toBe(200);
    const listed = (await dry.json()) as { ids: string[]; matched: number };
    expect(listed.ids).toContain(globex.id);
    expect(listed.ids).not.toContain(acme.id);

    const since = new Date(Date.now() - 60_000).toISOString();
    const response = await call(ingress, '/v1/redrives', {
      key: keys.admin,
      json: { tenant: 'globex', deadLetteredAfter: since },
    });
    expect(response.status).toBe(202);
    const outcome = (await response.json()) as { redriven: Array<{ id: string }>; matched: number };
    expect(outcome.redriven.map((r) => r.id)).toContain(globex.id);
    expect(outcome.redriven.map((r) => r.id)).not.toContain(acme.id);
    const acmeStatus = await call(ingress, `/v1/requests/${acme.id}`);
    expect(await acmeStatus.json()).toMatchObject({ status: 'dead' });

    const bad = await call(ingress, '/v1/redrives', {
      key: keys.admin,
      json: { limit: 5_000, tenants: 'x' },
    });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toContain('application/problem+json');
    expect((await call(ingress, '/v1/redrives', { json: {} })).status).toBe(403);
  });
});
