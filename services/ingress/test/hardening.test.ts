import { connect } from 'node:net';
import { codecs, recordHeaders } from '@sluice/contracts';
import type { ConsumedRecord } from '@sluice/kafka';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, type Ingress, readTopic, recordCount, startIngress } from './harness.ts';

let ingress: Ingress;
beforeAll(async () => {
  ingress = await startIngress();
});
afterAll(async () => {
  await ingress?.close();
});

/** Writes raw bytes to the ingress and returns what it answered, whole. */
function raw(request: string): Promise<string> {
  const { hostname, port } = new URL(ingress.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.end(request));
    let answer = '';
    socket.on('data', (chunk) => {
      answer += chunk.toString();
    });
    socket.on('end', () => resolve(answer));
    socket.on('error', reject);
  });
}

const json = '{"route":"echo","method":"POST","path":"/x"}';

/** An authenticated POST /v1/requests written by hand: the given header lines, then the body as it is. */
function rawSubmission(headers: string[], body: string): Promise<string> {
  return raw(
    [
      'POST /v1/requests HTTP/1.1',
      `Host: ${new URL(ingress.url).host}`,
      'Authorization: Bearer sk_test_acme_0123456789',
      'Content-Type: application/json',
      ...headers,
      '',
      body,
    ].join('\r\n'),
  );
}

describe('request smuggling', () => {
  it('refuses a request with both Content-Length and Transfer-Encoding as a problem, enqueuing nothing', async () => {
    const before = await recordCount(ingress.kafka, ingress.topic('requests'));
    const answer = await rawSubmission(
      [`Content-Length: ${json.length}`, 'Transfer-Encoding: chunked'],
      `${json.length.toString(16)}\r\n${json}\r\n0\r\n\r\n`,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('application/problem+json');
    expect(await recordCount(ingress.kafka, ingress.topic('requests'))).toBe(before);
  });

  it('refuses two different Content-Length headers', async () => {
    const answer = await raw(
      [
        'POST /v1/requests HTTP/1.1',
        `Host: ${new URL(ingress.url).host}`,
        'Content-Length: 5',
        'Content-Length: 6',
        '',
        'hello!',
      ].join('\r\n'),
    );
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
  });

  it('refuses headers larger than limits.maxHeaderBytes with 431 and a problem document, enqueuing nothing', async () => {
    const before = await recordCount(ingress.kafka, ingress.topic('requests'));
    // 20 KiB of header against the default limit of 16 KiB.
    const answer = await rawSubmission(
      [`X-Padding: ${'p'.repeat(20 * 1024)}`, `Content-Length: ${json.length}`],
      json,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 431 /);
    expect(answer).toContain('application/problem+json');
    const problem = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as {
      type: string;
      status: number;
    };
    expect(problem).toMatchObject({ type: 'urn:sluice:problem:headers-too-large', status: 431 });
    expect(await recordCount(ingress.kafka, ingress.topic('requests'))).toBe(before);
  });
});

describe('what clients send toward the upstream', () => {
  it('refuses header names and values that are not legal HTTP in the JSON form', async () => {
    for (const headers of [{ 'a b': '1' }, { 'x-ok': 'line\r\nInjected: yes' }, { 'x-ok': 'nul\u0000' }]) {
      const response = await call(ingress, '/v1/requests', {
        json: { route: 'echo', method: 'POST', path: '/x', headers },
      });
      expect(response.status).toBe(400);
    }
  });

  it('bounds ordering and idempotency keys in the transparent form as in the JSON form', async () => {
    const long = 'k'.repeat(257);
    const cases: Array<Record<string, string>> = [
      { 'sluice-key': long },
      { 'idempotency-key': long },
      { 'idempotency-key': '' },
    ];
    for (const headers of cases) {
      const response = await call(ingress, '/r/echo/x', { method: 'POST', body: 'x', headers });
      expect(response.status).toBe(400);
    }
  });

  it('reads the path of the transparent form after a percent-encoded route segment', async () => {
    const response = await call(ingress, '/r/ech%6F/orders/7?x=1', { method: 'POST', body: 'x' });
    expect(response.status).toBe(202);
    const { id } = (await response.json()) as { id: string };
    const record = (await readTopic(ingress.kafka, ingress.topic('requests'))).find(
      (r) => r.headers[recordHeaders.requestId] === id,
    );
    const decoded = codecs.request.decode(record as ConsumedRecord);
    expect(decoded.ok && decoded.value).toMatchObject({
      route: 'echo',
      path: '/orders/7',
      query: { x: '1' },
    });
  });

  it('answers 404 for a route named like a property of every object, never 403 or 5xx', async () => {
    expect(
      (await call(ingress, '/v1/requests', { json: { route: 'constructor', method: 'GET', path: '/' } }))
        .status,
    ).toBe(404);
    expect((await call(ingress, '/r/constructor/x')).status).toBe(404);
    // Not valid route names at all: refused as invalid input.
    for (const route of ['__proto__', 'toString']) {
      const response = await call(ingress, '/v1/requests', { json: { route, method: 'GET', path: '/' } });
      expect(response.status, route).toBe(400);
      expect((await call(ingress, `/r/${route}/x`)).status, route).toBe(404);
    }
  });

  it('never takes an absolute upstream URL from the client', async () => {
    for (const path of ['http://169.254.169.254/latest', '//evil.example/x']) {
      const response = await call(ingress, '/v1/requests', { json: { route: 'echo', method: 'GET', path } });
      expect(response.status, path).toBe(400);
    }
  });
});
