import { randomUUID } from 'node:crypto';
import { codecs, recordHeaders, tenantResultTopicName } from '@sluice/contracts';
import { waitFor } from '@sluice/testkit';
import { type CloudEvent, Kafka } from 'cloudevents';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import {
  api,
  readTopic,
  type StatusDocument,
  statusOf,
  tenantKeys,
  terminalStatusOf,
  webhookSecret,
} from '../src/harness.ts';
import { stackPerFile } from '../src/stack-per-file.ts';
import { callsTo, ScriptedUpstream } from '../src/upstream.ts';

const upstream = new ScriptedUpstream();
const stack = stackPerFile(() => ({ upstream: upstream.handler }));

const token = () => randomUUID().slice(0, 8);
const submit = async (request: Record<string, unknown>, headers: Record<string, string> = {}) => {
  const response = await api(stack(), '/v1/requests', {
    json: { route: 'e2e', method: 'POST', ...request },
    headers,
  });
  return { response, body: (await response.json()) as { id: string } & Partial<StatusDocument> };
};

describe('a single request', () => {
  it('goes through queued, processing and succeeded, as every status lookup shows', async () => {
    const hold = token();
    const { response, body } = await submit({ path: `/hold/${hold}`, body: { n: 1 } });
    expect(response.status).toBe(202);
    expect(['queued', 'processing']).toContain((await statusOf(stack(), body.id)).status);
    await waitFor(
      'the processing status',
      async () => (await statusOf(stack(), body.id)).status === 'processing',
    );
    upstream.release(hold);
    const done = await statusOf(stack(), body.id, 10);
    expect(done).toMatchObject({ id: body.id, status: 'succeeded', attempts: 1, result: { status: 200 } });
    expect(JSON.parse(done.result?.body ?? '{}')).toMatchObject({ method: 'POST', body: '{"n":1}' });
    const { acceptedAt, startedAt, finishedAt } = done.timings;
    expect(Date.parse(acceptedAt)).toBeLessThanOrEqual(Date.parse(startedAt ?? ''));
    expect(Date.parse(startedAt ?? '')).toBeLessThanOrEqual(Date.parse(finishedAt ?? ''));
    const call = callsTo(stack().upstream.calls, `/up/hold/${hold}`)[0];
    expect(call?.headers['idempotency-key']).toBe(body.id);
  });

  it('answers 200 with the result within Prefer: wait', async () => {
    const { response, body } = await submit({ path: `/ok/${token()}` }, { prefer: 'wait=20' });
    expect(response.status).toBe(200);
    expect(response.headers.get('preference-applied')).toBe('wait=20');
    expect(body).toMatchObject({ status: 'succeeded', result: { status: 200 } });
  });

  it("answers a failed request with the upstream's final answer and no retry", async () => {
    const path = `/bad/${token()}`;
    const { body } = await submit({ path }, { prefer: 'wait=20' });
    expect(body).toMatchObject({
      status: 'failed',
      attempts: 1,
      result: { status: 400, body: '{"error":"bad input"}' },
    });
    expect(callsTo(stack().upstream.calls, `/up${path}`)).toHaveLength(1);
  });
});

describe('the transparent form', () => {
  it("answers with the upstream's own status, headers and body, and the tracking id", async () => {
    const path = `/ok/${token()}`;
    const response = await fetch(`${stack().ingress}/r/e2e${path}?a=1`, {
      method: 'PUT',
      headers: {
        authorization: `Bearer ${tenantKeys.acme}`,
        prefer: 'wait=20',
        'content-type': 'text/plain',
        'x-app': 'legacy',
      },
      body: 'as it is',
    });
    expect(response.status).toBe(200);
    const id = response.headers.get('sluice-request-id');
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(response.headers.get('content-type')).toBe('application/json');
    const echoed = (await response.json()) as {
      method: string;
      path: string;
      headers: Record<string, string>;
      body: string;
    };
    expect(echoed).toMatchObject({ method: 'PUT', path: `/up${path}?a=1`, body: 'as it is' });
    expect(echoed.headers['x-app']).toBe('legacy');
    expect(echoed.headers.authorization).toBeUndefined();
    expect((await statusOf(stack(), id ?? '')).status).toBe('succeeded');
  });
});

describe('delivery', () => {
  it('sends a Standard Webhooks-signed callback that verifies with the tenant secret', async () => {
    const callbackPath = `/hooks/${token()}`;
    const traceId = randomUUID().replaceAll('-', '');
    const { body } = await submit(
      { path: `/ok/${token()}`, callback: { url: `${stack().receiver.url}${callbackPath}` } },
      { traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
    );
    const call = await waitFor('the webhook', () =>
      stack().receiver.calls.find((c) => c.path === callbackPath),
    );
    const headers = Object.fromEntries(Object.entries(call.headers).map(([k, v]) => [k, String(v)]));
    const payload = new Webhook(webhookSecret).verify(call.body, headers) as {
      type: string;
      data: StatusDocument;
    };
    expect(payload.type).toBe('request.completed');
    expect(payload.data).toMatchObject({ id: body.id, status: 'succeeded', result: { status: 200 } });
    expect(headers['webhook-id']).toBe(`msg_request_${body.id}`);
    // The client's trace continues through all four services into the webhook call.
    expect(headers.traceparent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    expect(() =>
      new Webhook('whsec_d3JvbmctZTJlLXdlYmhvb2stc2VjcmV0LWdsb2JleA==').verify(call.body, headers),
    ).toThrow();
  });

  it("publishes every completion to the tenant's result topic as a binary-mode CloudEvent", async () => {
    const { body } = await submit({ path: `/ok/${token()}` }, { prefer: 'wait=20' });
    const topic = tenantResultTopicName('acme', stack().prefix);
    const event = await waitFor('the CloudEvent', async () => {
      for (const record of await readTopic(stack().kafka, topic)) {
        if (record.key?.toString() !== body.id) continue;
        const headers = Object.fromEntries(Object.entries(record.headers));
        const message = {
          headers,
          key: body.id,
          value: record.value?.toString() ?? '',
          body: record.value?.toString() ?? '',
        };
        return Kafka.toEvent(message) as CloudEvent<StatusDocument>;
      }
      return undefined;
    });
    expect(event.type).toBe('dev.sluice.request.completed');
    expect(event.specversion).toBe('1.0');
    expect(event.id).toBe(`msg_request_${body.id}`);
    expect(event.subject).toBe(body.id);
    const data = typeof event.data === 'string' ? JSON.parse(event.data) : event.data;
    expect(data).toMatchObject({ id: body.id, status: 'succeeded' });
  });
});

describe('a batch of 500', () => {
  it('completes, streams its progress as Server-Sent Events, and calls the batch callback once', async () => {
    const callbackPath = `/hooks/batch-${token()}`;
    const requests = Array.from({ length: 500 }, (_, i) => ({
      route: 'e2e',
      method: 'GET',
      path: `/ok/b${i}`,
    }));
    const response = await api(stack(), '/v1/batches', {
      json: { requests, callback: { url: `${stack().receiver.url}${callbackPath}` } },
    });
    expect(response.status).toBe(202);
    const { batchId, ids } = (await response.json()) as { batchId: string; ids: string[] };
    expect(ids).toHaveLength(500);
    const events = await api(stack(), `/v1/batches/${batchId}/events`);
    expect(events.headers.get('content-type')).toContain('text/event-stream');
    const text = await events.text();
    const names = [...text.matchAll(/^event: (\w+)$/gm)].map((m) => m[1]);
    expect(names.at(-1)).toBe('completed');
    const completed = JSON.parse(
      text
        .trim()
        .split('\n')
        .at(-1)
        ?.replace(/^data: /, '') ?? '{}',
    );
    expect(completed).toMatchObject({ batchId, status: 'completed', total: 500, counts: { succeeded: 500 } });
    const batch = (await (await api(stack(), `/v1/batches/${batchId}`)).json()) as {
      status: string;
      items: StatusDocument[];
    };
    expect(batch.status).toBe('completed');
    expect(batch.items.map((item) => item.id).sort()).toEqual([...ids].sort());
    const hook = await waitFor('the batch webhook', () => {
      const calls = stack().receiver.calls.filter((c) => c.path === callbackPath);
      return calls.length > 0 && calls;
    });
    const headers = Object.fromEntries(
      Object.entries(hook[0]?.headers ?? {}).map(([k, v]) => [k, String(v)]),
    );
    const payload = new Webhook(webhookSecret).verify(hook[0]?.body ?? '', headers) as {
      type: string;
      data: { counts: Record<string, number> };
    };
    expect(payload.type).toBe('batch.completed');
    expect(payload.data.counts.succeeded).toBe(500);
    // One webhook per batch completion: the aggregator wrote exactly one for this batch.
    const completions = (await readTopic(stack().kafka, stack().topic('completions'))).filter(
      (r) => r.headers[recordHeaders.batchId] === batchId && r.headers[recordHeaders.kind] === 'batch',
    );
    expect(completions).toHaveLength(1);
    expect(stack().receiver.calls.filter((c) => c.path === callbackPath)).toHaveLength(1);
  });
});

describe('retries', () => {
  it('tries again after 503s and succeeds', async () => {
    const path = `/fail/${token()}/2`;
    const { body } = await submit({ path }, { prefer: 'wait=30' });
    expect(body).toMatchObject({ status: 'succeeded', attempts: 3 });
    expect(callsTo(stack().upstream.calls, `/up${path}`)).toHaveLength(3);
  });

  it('dead-letters a request whose tries are exhausted, keeping the record and every attempt', async () => {
    const path = `/down/${token()}`;
    const { body } = await submit({ path });
    const done = await terminalStatusOf(stack(), body.id);
    expect(done).toMatchObject({ status: 'dead', attempts: 4, result: { status: 503 } });
    const letter = await waitFor('the dead letter', async () =>
      (await readTopic(stack().kafka, stack().topic('deadLetters'))).find(
        (r) => r.headers[recordHeaders.requestId] === body.id,
      ),
    );
    expect(letter.headers[recordHeaders.deadLetterReason]).toBe('retries-exhausted');
    const decoded = codecs.deadLetter.decode(letter);
    expect(decoded.ok).toBe(true);
    if (!decoded.ok) return;
    expect(decoded.value.attempts.map((a) => a.status)).toEqual([503, 503, 503, 503]);
    expect(decoded.value.attempts.map((a) => a.number)).toEqual([1, 2, 3, 4]);
    const original = codecs.request.decode({
      value: Buffer.from(decoded.value.original.value ?? '', 'base64'),
      headers: decoded.value.original.headers,
    });
    expect(original.ok && original.value.path).toBe(path);
  });

  it('ends a request whose upstream does not answer within the timeout', async () => {
    const { body } = await submit({ route: 'e2e-slow', path: `/hang/${token()}` });
    const done = await terminalStatusOf(stack(), body.id);
    expect(done).toMatchObject({ status: 'dead', attempts: 2, error: { code: 'UPSTREAM_TIMEOUT' } });
  });

  it('honours Retry-After of a 429', async () => {
    const path = `/limited/${token()}`;
    const { body } = await submit({ path }, { prefer: 'wait=30' });
    expect(body).toMatchObject({ status: 'succeeded', attempts: 2 });
    const [first, second] = callsTo(stack().upstream.calls, `/up${path}`);
    expect((second?.at ?? 0) - (first?.at ?? 0)).toBeGreaterThanOrEqual(950);
  });

  it('keeps the order of requests with one ordering key while the first one is retried', async () => {
    const key = `customer-${token()}`;
    const first = token();
    const ids: string[] = [];
    for (let i = 0; i < 5; i += 1) {
      const path = i === 0 ? `/fail/${first}/2` : `/ok/${key}-${i}`;
      const { response, body } = await submit({ path, key });
      expect(response.status).toBe(202);
      ids.push(body.id);
    }
    for (const id of ids) expect((await terminalStatusOf(stack(), id)).status).toBe('succeeded');
    const order = stack()
      .upstream.calls.filter((c) => c.path.includes(first) || c.path.includes(`${key}-`))
      .map((c) => c.path.replace('/up', ''));
    expect(order).toEqual([
      `/fail/${first}/2`,
      `/fail/${first}/2`,
      `/fail/${first}/2`,
      `/ok/${key}-1`,
      `/ok/${key}-2`,
      `/ok/${key}-3`,
      `/ok/${key}-4`,
    ]);
  });
});

describe('idempotency', () => {
  it('gives the same id for the same key and content, calls the upstream once, and refuses other content', async () => {
    const path = `/ok/${token()}`;
    const key = `idem-${token()}`;
    const first = await submit({ path, idempotencyKey: key }, { prefer: 'wait=20' });
    const again = await submit({ path, idempotencyKey: key });
    expect(again.response.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);
    expect(again.body.status).toBe('succeeded');
    expect(again.response.headers.get('idempotent-replayed')).toBe('true');
    const conflict = await submit({ path: `${path}/other`, idempotencyKey: key });
    expect(conflict.response.status).toBe(422);
    const enqueued = (await readTopic(stack().kafka, stack().topic('requests'))).filter((record) => {
      const decoded = codecs.request.decode(record);
      return decoded.ok && decoded.value.idempotency?.key === key;
    });
    expect(enqueued).toHaveLength(1);
    expect(callsTo(stack().upstream.calls, `/up${path}`)).toHaveLength(1);
  });
});

describe('tenant isolation', () => {
  it("hides one tenant's requests and batches from another", async () => {
    const { body } = await submit({ path: `/ok/${token()}` });
    expect((await api(stack(), `/v1/requests/${body.id}`, { key: tenantKeys.globex })).status).toBe(404);
    expect((await api(stack(), `/v1/batches/${body.id}`, { key: tenantKeys.globex })).status).toBe(404);
    expect((await api(stack(), `/v1/batches/${body.id}/events`, { key: tenantKeys.globex })).status).toBe(
      404,
    );
  });
});

describe('records that cannot be read', () => {
  it.each([
    ['requests', 'batch-worker'],
    ['results', 'aggregator'],
    ['completions', 'delivery'],
  ] as const)(
    'on %s are dead-lettered by the %s with the reason, and the partition keeps flowing',
    async (topicId, service) => {
      const producer = stack().kafka.producer();
      const key = `poison-${token()}`;
      await producer.send([
        {
          topic: stack().topic(topicId),
          key,
          value: 'not json at all',
          headers: { 'sluice-schema-version': '1' },
        },
        { topic: stack().topic(topicId), key, value: '{}', headers: { 'sluice-schema-version': '9' } },
      ]);
      await producer.close();
      const letters = await waitFor('both dead letters', async () => {
        const found = (await readTopic(stack().kafka, stack().topic('deadLetters')))
          .map((record) => codecs.deadLetter.decode(record))
          .flatMap((decoded) =>
            decoded.ok && decoded.value.original.key === Buffer.from(key).toString('base64')
              ? [decoded.value]
              : [],
          );
        return found.length === 2 && found;
      });
      expect(letters.map((letter) => letter.reason).sort()).toEqual(['undecodable', 'unsupported-schema']);
      expect(letters.every((letter) => letter.service === service)).toBe(true);
      expect(
        Buffer.from(
          letters.find((l) => l.reason === 'undecodable')?.original.value ?? '',
          'base64',
        ).toString(),
      ).toBe('not json at all');
      // Records after the poison ones are still handled.
      const { body } = await submit({ path: `/ok/${token()}` }, { prefer: 'wait=20' });
      expect(body.status).toBe('succeeded');
    },
  );
});
