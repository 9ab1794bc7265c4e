/**
 * Property tests of the public API, against the ingress on the real broker and over real HTTP: whatever a client
 * sends, the ingress answers with a response /openapi.json documents and never a 5xx, and exactly the requests it
 * accepted reach Kafka, each record readable with the contracts' codecs.
 */
import { request as httpRequest, type IncomingHttpHeaders, METHODS } from 'node:http';
import { codecs, recordHeaders } from '@sluice/contracts';
import { httpMethods } from '@sluice/gateway-config';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  acceptedResponse,
  batchAcceptedResponse,
  problemDocument,
  requestStatusDocument,
} from '../src/api-schemas.ts';
import { openApiDocument } from '../src/openapi.ts';
import { type Ingress, keys, readTopic, startIngress } from './harness.ts';

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

interface Sent {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

/**
 * One HTTP exchange through node:http rather than fetch: fetch normalises paths ("..", percent-encodings) and
 * refuses some methods and headers, and these properties are about what reaches the server as it was sent.
 */
function send(ingress: Ingress, sent: Sent): Promise<Answer> {
  const url = new URL(ingress.url);
  const body = sent.body === undefined ? undefined : Buffer.from(sent.body);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        method: sent.method ?? (body === undefined ? 'GET' : 'POST'),
        path: sent.path,
        headers: { ...sent.headers, ...(body !== undefined ? { 'content-length': body.length } : {}) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const bearer = { authorization: `Bearer ${keys.acme}` };

function postJson(ingress: Ingress, path: string, json: unknown, headers: Record<string, string> = {}) {
  return send(ingress, {
    method: 'POST',
    path,
    headers: { ...bearer, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(json) ?? 'null',
  });
}

type Endpoint = '/v1/requests' | '/v1/batches' | 'transparent';

/** The response codes /openapi.json documents for an endpoint. */
function documentedStatuses(endpoint: Endpoint): Set<number> {
  const paths = (openApiDocument() as { paths: Record<string, { post?: { responses: object } }> }).paths;
  // The transparent form answers as POST /v1/requests does (it is not in the document: any method, any path).
  const documented = paths[endpoint === 'transparent' ? '/v1/requests' : endpoint]?.post?.responses ?? {};
  return new Set(Object.keys(documented).map(Number));
}

/**
 * What the ingress accepted so far: the ids answered 202 (or 200) and how many submissions were new (each one
 * announces its batch once on the results topic). A replayed idempotency key must name an id already here.
 */
class Ledger {
  readonly ids = new Set<string>();
  submissions = 0;

  accept(ids: string[], replayed: boolean): void {
    if (replayed) {
      for (const id of ids) expect(this.ids.has(id), `replayed id ${id} was accepted before`).toBe(true);
      return;
    }
    for (const id of ids) {
      expect(this.ids.has(id), `id ${id} is new`).toBe(false);
      this.ids.add(id);
    }
    this.submissions += 1;
  }
}

/**
 * The answer is documented: never 5xx, a problem document for every 4xx, the documented body for 202 and 200.
 * Accepted ids go into the ledger. `itemCount` is the number of requests in a batch that was sent as an array.
 */
function expectDocumented(
  answer: Answer,
  endpoint: Endpoint,
  ledger: Ledger,
  context: { method?: string; itemCount?: number } = {},
): void {
  const text = answer.body.toString();
  const where = `${answer.status} ${text.slice(0, 500)}`;
  expect(answer.status, where).toBeLessThan(500);
  expect(documentedStatuses(endpoint).has(answer.status), `status ${where} is documented`).toBe(true);
  const replayed = answer.headers['idempotent-replayed'] === 'true';
  if (answer.status >= 400) {
    expect(answer.headers['content-type'], where).toMatch(/^application\/problem\+json/);
    if (context.method === 'HEAD') return;
    const problem = problemDocument.parse(JSON.parse(text));
    expect(problem.type, where).toMatch(/^urn:sluice:problem:[a-z-]+$/);
    expect(problem.title.length, where).toBeGreaterThan(0);
    expect(problem.status, where).toBe(answer.status);
    return;
  }
  expect(answer.headers['content-type'], where).toMatch(/^application\/json/);
  if (answer.status === 200) {
    expect(endpoint, where).not.toBe('/v1/batches');
    const status = requestStatusDocument.parse(JSON.parse(text));
    ledger.accept([status.id], true);
    return;
  }
  expect(answer.status, where).toBe(202);
  if (endpoint === '/v1/batches') {
    const accepted = batchAcceptedResponse.parse(JSON.parse(text));
    expect(accepted.statusUrl).toBe(`/v1/batches/${accepted.batchId}`);
    expect(answer.headers.location).toBe(accepted.statusUrl);
    expect(new Set(accepted.ids).size).toBe(accepted.ids.length);
    if (context.itemCount !== undefined && !replayed) expect(accepted.ids).toHaveLength(context.itemCount);
    ledger.accept(accepted.ids, replayed);
    return;
  }
  // HEAD answers carry the headers of the 202 and no body.
  const id = String(answer.headers['sluice-request-id']);
  if (context.method !== 'HEAD') {
    const accepted = acceptedResponse.parse(JSON.parse(text));
    expect(accepted.id).toBe(id);
    expect(accepted.statusUrl).toBe(`/v1/requests/${id}`);
  }
  expect(answer.headers.location).toBe(`/v1/requests/${id}`);
  expect(answer.headers['retry-after']).toMatch(/^\d+$/);
  ledger.accept([id], replayed);
}

/**
 * Every record on the request, status and results topics decodes with the contracts' codecs and belongs to an
 * accepted request: as many request records and queued statuses as ids answered 202, one announcement per new
 * submission, and nothing for any rejected input.
 */
async function expectRecordsOfAccepted(ingress: Ingress, ledger: Ledger): Promise<void> {
  const expected = [...ledger.ids].sort();
  const lanes = ['requestsHigh', 'requests', 'requestsLow'] as const;
  const requestRecords = (
    await Promise.all(lanes.map((lane) => readTopic(ingress.kafka, ingress.topic(lane))))
  ).flat();
  const requestIds = requestRecords.map((record) => {
    const decoded = codecs.request.decode(record);
    if (!decoded.ok) throw new Error(`request record does not decode: ${decoded.detail}`);
    expect(record.headers[recordHeaders.requestId]).toBe(decoded.value.id);
    expect(decoded.value.tenant).toBe('acme');
    expect(decoded.value.attempts).toEqual([]);
    return decoded.value.id;
  });
  expect(requestIds.sort()).toEqual(expected);

  const statusIds = (await readTopic(ingress.kafka, ingress.topic('status'))).map((record) => {
    const decoded = codecs.status.decode(record);
    if (!decoded.ok) throw new Error(`status record does not decode: ${decoded.detail}`);
    expect(decoded.value.status).toBe('queued');
    return decoded.value.id;
  });
  expect(statusIds.sort()).toEqual(expected);

  const announced = (await readTopic(ingress.kafka, ingress.topic('results'))).map((record) => {
    const decoded = codecs.progress.decode(record);
    if (!decoded.ok) throw new Error(`progress record does not decode: ${decoded.detail}`);
    if (decoded.value.kind !== 'accepted') throw new Error(`the ingress announced ${decoded.value.kind}`);
    return decoded.value.ids;
  });
  expect(announced).toHaveLength(ledger.submissions);
  expect(announced.flat().sort()).toEqual(expected);
}

// Arbitraries. Valid submissions first, then the same with one field made wrong.

const segment = fc.stringMatching(/^[A-Za-z0-9._~-]{1,12}$/).filter((s) => s !== '.' && s !== '..');
const validPath = fc.array(segment, { maxLength: 4 }).map((segments) => `/${segments.join('/')}`);
const headerName = fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/);
const printable = fc.stringMatching(/^[\x20-\x7e]{0,40}$/);
const weirdText = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 30 }),
  fc.string({ unit: 'binary', maxLength: 30 }),
  // Lone UTF-16 surrogates survive JSON.parse; they must not break a record.
  fc.string({
    unit: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)),
    maxLength: 4,
  }),
);

const validFields = {
  route: fc.constant('echo'),
  method: fc.constantFrom(...httpMethods),
  path: validPath,
  query: fc.dictionary(
    fc.string({ maxLength: 10 }),
    fc.oneof(weirdText, fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 })),
    { maxKeys: 3 },
  ),
  headers: fc.dictionary(headerName, printable, { maxKeys: 3 }),
  body: fc.jsonValue({ maxDepth: 2 }),
  priority: fc.constantFrom('high', 'normal', 'low'),
  key: fc.string({ minLength: 1, maxLength: 30 }),
  deadlineMs: fc.integer({ min: 1_000, max: 86_400_000 }),
};
const requiredKeys = ['route', 'method', 'path'] as const;
const validItem = fc.oneof(
  fc.record(validFields, { requiredKeys: [...requiredKeys] }),
  fc.record(
    { ...validFields, body: fc.constant(undefined), bodyBase64: fc.base64String({ maxLength: 200 }) },
    { requiredKeys: [...requiredKeys] },
  ),
);
const callback = fc.record({
  url: fc.constantFrom('https://example.com/hook', 'http://127.0.0.1:9/cb', 'https://[::1]:8443/x?y=1'),
});
const validRequest = fc
  .tuple(
    validItem,
    fc.record({ idempotencyKey: fc.string({ minLength: 1, maxLength: 20 }), callback }, { requiredKeys: [] }),
  )
  .map(([item, extra]) => ({ ...item, ...extra }));

/** Values of the wrong type, size, sign or alphabet for any field. */
const wrongValue = fc.oneof(
  fc.constantFrom<unknown>(
    null,
    true,
    '',
    ' ',
    '/',
    '/..',
    '/a/../..',
    '/%2e%2e/x',
    '/%2F',
    '/%ZZ',
    '//evil.example/x',
    '/a\u0000b',
    '/a\r\nX-Injected: 1',
    '/a?b#c',
    '\u202e',
    '__proto__',
    'constructor',
    'ECHO',
    'readonly',
    'private',
    'nope',
    'get',
    'CONNECT',
    'ftp://example.com/x',
    'javascript:alert(1)',
    'aGk',
    '====',
    -1,
    0,
    0.5,
    999,
    1e21,
    -1e308,
    2 ** 53,
    Number.MAX_SAFE_INTEGER,
    [],
    {},
    ['a', 1],
    { __proto__: null, 'a b': 'c' },
    { 'x-h': 'a\r\nb' },
    { 'x-h': 1 },
    { '': 'x' },
    { url: 'https://example.com' },
    JSON.parse('{"__proto__": "x", "constructor": "y"}'),
  ),
  fc.integer(),
  fc.double(),
  weirdText,
  fc.nat({ max: 20_000 }).map((n) => 'x'.repeat(n)),
  fc.jsonValue({ maxDepth: 2 }),
);

const mutableFields = [
  ...Object.keys(validFields),
  'bodyBase64',
  'idempotencyKey',
  'callback',
  'callback.url',
  'requests',
  'colour',
  '__proto__',
  'constructor',
];

/** A copy with `field` set to `value` as an own property (even `__proto__`), `a.b` reaching one level down. */
function withField(target: Record<string, unknown>, field: string, value: unknown): Record<string, unknown> {
  const [head, rest] = field.split('.') as [string, string | undefined];
  const copy = { ...target };
  const next =
    rest === undefined
      ? value
      : withField(
          typeof copy[head] === 'object' && copy[head] !== null
            ? (copy[head] as Record<string, unknown>)
            : {},
          rest,
          value,
        );
  Object.defineProperty(copy, head, { value: next, enumerable: true, writable: true, configurable: true });
  return copy;
}

const mutated = <T extends Record<string, unknown>>(valid: fc.Arbitrary<T>) =>
  fc
    .tuple(valid, fc.constantFrom(...mutableFields), wrongValue)
    .map(([value, field, wrong]) => withField(value, field, wrong));

const nearValidRequest = fc.oneof(validRequest, mutated(validRequest));
const nearValidBatch = fc.oneof(
  fc.record(
    {
      requests: fc.array(fc.oneof({ weight: 3, arbitrary: validItem }, mutated(validItem)), {
        minLength: 1,
        maxLength: 5,
      }),
      idempotencyKey: fc.string({ minLength: 1, maxLength: 20 }),
      callback,
    },
    { requiredKeys: ['requests'] },
  ),
  fc
    .record({ requests: fc.array(validItem, { maxLength: 3 }) })
    .chain((batch) => mutated(fc.constant(batch))),
);

// A fresh ingress (its own topics) per property, so that its records are exactly what the property sent.
let ingress: Ingress;
let ledger: Ledger;
beforeEach(async () => {
  ingress = await startIngress();
  ledger = new Ledger();
});
afterEach(async () => {
  await ingress?.close();
});

describe('/openapi.json (found by schemathesis)', () => {
  it('resolves every $ref inside the document, the JSON body of a request included', async () => {
    const answer = await send(ingress, { path: '/openapi.json' });
    const document = JSON.parse(answer.body.toString()) as unknown;
    const refs: string[] = [];
    const collect = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(collect);
      else if (node !== null && typeof node === 'object') {
        for (const [name, value] of Object.entries(node)) {
          if (name === '$ref' && typeof value === 'string') refs.push(value);
          else collect(value);
        }
      }
    };
    collect(document);
    const resolve = (ref: string): unknown =>
      ref
        .replace(/^#\//, '')
        .split('/')
        .map((token) => token.replaceAll('~1', '/').replaceAll('~0', '~'))
        .reduce<unknown>((node, token) => (node as Record<string, unknown> | undefined)?.[token], document);
    expect(refs).toContain('#/components/schemas/JsonValue');
    for (const ref of new Set(refs)) {
      expect(ref, ref).toMatch(/^#\/[^#]*$/);
      expect(resolve(ref), ref).toBeTypeOf('object');
    }
  });

  it('says that a request gives body or bodyBase64, not both, as the ingress enforces', () => {
    const schemas = (openApiDocument() as { components: { schemas: Record<string, { not?: unknown }> } })
      .components.schemas;
    for (const id of ['RequestSubmission', 'BatchItemSubmission']) {
      expect(schemas[id]?.not, id).toEqual({ required: ['body', 'bodyBase64'] });
    }
  });

  it('describes each Server-Sent Event of a batch as it arrives: id, event and JSON data', async () => {
    const item = { route: 'echo', method: 'POST', path: '/p' };
    const accepted = await postJson(ingress, '/v1/batches', { requests: [item] });
    const { statusUrl } = batchAcceptedResponse.parse(JSON.parse(accepted.body.toString()));
    const response = await fetch(`${ingress.url}${statusUrl}/events`, { headers: bearer });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    let text = '';
    while (!text.includes('\n\n')) text += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    const event = Object.fromEntries(
      (text.split('\n\n')[0] ?? '')
        .split('\n')
        .map((line) => [line.split(': ')[0], line.slice(line.indexOf(': ') + 2)]),
    );
    const paths = (
      openApiDocument() as { paths: Record<string, { get: { responses: Record<string, unknown> } }> }
    ).paths;
    const stream = paths['/v1/batches/{id}/events'];
    if (stream === undefined) throw new Error('the event stream is not documented');
    const schema = (
      stream.get.responses['200'] as {
        content: Record<
          string,
          { schema: { required: string[]; properties: { event: { enum: string[] } } } }
        >;
      }
    ).content['text/event-stream']?.schema;
    expect(Object.keys(event).sort()).toEqual([...(schema?.required ?? [])].sort());
    expect(schema?.properties.event.enum).toContain(event.event);
    expect(JSON.parse(event.data ?? '')).toMatchObject({ status: 'open', total: 1 });
  });
});

describe('client faults the body parsers and the router report (found by the properties below)', () => {
  it.each([
    ['/v1/requests', 'gzip'],
    ['/v1/batches', 'deflate'],
    ['/r/echo/x', 'br'],
  ])('answers a %s body that does not inflate (%s) with 400, not 500', async (path, encoding) => {
    const answer = await send(ingress, {
      method: 'POST',
      path,
      headers: { ...bearer, 'content-type': 'application/json', 'content-encoding': encoding },
      body: '{"not":"compressed"}',
    });
    expect(answer.status).toBe(400);
    expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(answer.body.toString())).toMatchObject({ type: 'urn:sluice:problem:validation' });
  });

  it.each(['/r/echo/%', '/r/echo/a/%E0%A4%A', '/r/%ZZ/x'])(
    'answers a path that does not percent-decode (%s) with 400, not 500',
    async (path) => {
      const answer = await send(ingress, { method: 'GET', path, headers: bearer });
      expect(answer.status).toBe(400);
      expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(JSON.parse(answer.body.toString())).toMatchObject({ type: 'urn:sluice:problem:validation' });
    },
  );
});

describe('POST /v1/requests and /v1/batches with any JSON', () => {
  it('answers any JSON value, and any bytes, with a documented response and never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<Endpoint>('/v1/requests', '/v1/batches'),
        fc.jsonValue(),
        async (endpoint, json) => {
          expectDocumented(await postJson(ingress, endpoint, json), endpoint, ledger);
        },
      ),
      { numRuns: 150 },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<Endpoint>('/v1/requests', '/v1/batches'),
        fc.oneof(fc.string({ unit: 'binary', maxLength: 200 }), fc.uint8Array({ maxLength: 200 })),
        fc.constantFrom(
          'application/json',
          'application/json; charset=utf-16',
          'application/json; charset=latin1',
          'text/plain',
          'application/x-www-form-urlencoded',
        ),
        fc.constantFrom(undefined, 'gzip', 'deflate', 'br', 'identity', 'x-unknown'),
        async (endpoint, bytes, contentType, contentEncoding) => {
          const answer = await send(ingress, {
            method: 'POST',
            path: endpoint,
            headers: {
              ...bearer,
              'content-type': contentType,
              ...(contentEncoding !== undefined ? { 'content-encoding': contentEncoding } : {}),
            },
            body: typeof bytes === 'string' ? bytes : Buffer.from(bytes),
          });
          expectDocumented(answer, endpoint, ledger);
        },
      ),
      { numRuns: 100 },
    );
    await expectRecordsOfAccepted(ingress, ledger);
  });

  it('answers near-valid single requests with a documented response, and enqueues exactly the accepted', async () => {
    await fc.assert(
      fc.asyncProperty(nearValidRequest, async (json) => {
        expectDocumented(await postJson(ingress, '/v1/requests', json), '/v1/requests', ledger);
      }),
      { numRuns: 200 },
    );
    await expectRecordsOfAccepted(ingress, ledger);
    // The generators reach acceptance often enough for the record check to mean something.
    expect(ledger.ids.size).toBeGreaterThan(10);
  });

  it('answers near-valid batches with a documented response, and enqueues exactly the accepted', async () => {
    await fc.assert(
      fc.asyncProperty(nearValidBatch, async (json) => {
        const itemCount = Array.isArray(json.requests) ? json.requests.length : undefined;
        const answer = await postJson(ingress, '/v1/batches', json);
        expectDocumented(answer, '/v1/batches', ledger, { itemCount });
      }),
      { numRuns: 150 },
    );
    await expectRecordsOfAccepted(ingress, ledger);
    expect(ledger.ids.size).toBeGreaterThan(10);
  });
});

// The transparent form: whatever arrives on /r/{route}/{path…}.

const pathPiece = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9_-]{1,5}$/),
  fc.constantFrom(
    '%',
    '%Z',
    '%ZZ',
    '%00',
    '%0A',
    '%2F',
    '%2f',
    '%2e',
    '%2E%2E',
    '.',
    '..',
    '%E2%82%AC',
    '%C3',
    '%FF',
    '\\',
    '%5C',
    '~',
    '@',
    ':',
    ';',
    '=',
    '&',
    '+',
    ',',
    '!',
    '$',
    "'",
    '(',
    ')',
    '*',
    '[',
    ']',
  ),
);
const rawSegment = fc.array(pathPiece, { maxLength: 3 }).map((pieces) => pieces.join(''));
const routeSegment = fc.oneof(
  { weight: 4, arbitrary: fc.constant('echo') },
  fc.constantFrom(
    'readonly',
    'private',
    'nope',
    'ECHO',
    'ech%6F',
    '%65cho',
    '__proto__',
    'constructor',
    'toString',
    'hasOwnProperty',
    '%',
    '..',
  ),
  rawSegment.filter((s) => s.length > 0),
);
const queryString = fc.oneof(
  fc.constant(''),
  fc
    .array(
      fc.tuple(rawSegment, fc.oneof(rawSegment, fc.constantFrom('a[b]=c', 'a[]=1', '[]', 'x[__proto__]=1'))),
      { maxLength: 4 },
    )
    .map((pairs) => `?${pairs.map(([name, value]) => `${name}=${value}`).join('&')}`),
);
const token = fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,20}$/);
// Headers that would change the framing or the connection of the exchange itself are left out.
const framingHeaders = new Set([
  'content-length',
  'transfer-encoding',
  'host',
  'connection',
  'expect',
  'upgrade',
  'keep-alive',
  'authorization',
]);
const headerValue = fc.oneof(
  printable,
  fc.stringMatching(/^[\t\x20-\x7e\x80-\xff]{0,60}$/),
  // Long, but all of them together stay below Node's 16 KiB header limit (whose 431 is Node's, not the app's).
  fc.nat({ max: 2_000 }).map((n) => 'v'.repeat(n)),
);
const transparentHeaders = fc.dictionary(
  fc.oneof(
    { weight: 3, arbitrary: token.map((name) => name.toLowerCase()) },
    fc.constantFrom(
      'sluice-priority',
      'sluice-key',
      'sluice-deadline-ms',
      'sluice-callback',
      'sluice-tenant',
      'content-type',
      'content-encoding',
      'prefer',
      'idempotency-key',
      'cookie',
      'x-forwarded-for',
    ),
  ),
  fc.oneof(
    headerValue,
    fc.constantFrom(
      'high',
      'urgent',
      '1000',
      '999',
      '99999999999999',
      'https://example.com/hook',
      'http://[',
      'gzip',
      'deflate',
      'br',
      'wait=0',
      'wait=1',
      'wait=61',
      'respond-async',
    ),
  ),
  { maxKeys: 5 },
);
const transparentMethods = METHODS.filter((m) => m !== 'CONNECT');

describe('the transparent form /r/{route}/{path}', () => {
  it('answers any route, path, query, method, header and body with a documented response, never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        routeSegment,
        fc.array(fc.oneof({ weight: 3, arbitrary: segment }, rawSegment), { maxLength: 4 }),
        queryString,
        fc.oneof(
          { weight: 4, arbitrary: fc.constantFrom(...httpMethods) },
          fc.constantFrom(...transparentMethods),
        ),
        transparentHeaders,
        fc.option(fc.oneof(fc.string({ maxLength: 100 }), fc.uint8Array({ maxLength: 100 })), {
          nil: undefined,
        }),
        async (route, segments, query, method, headers, body) => {
          const sent: Sent = {
            method,
            path: `/r/${route}${segments.map((s) => `/${s}`).join('')}${query}`,
            headers: {
              ...Object.fromEntries(Object.entries(headers).filter(([name]) => !framingHeaders.has(name))),
              ...bearer,
            },
            ...(body !== undefined && method !== 'GET' && method !== 'HEAD'
              ? { body: typeof body === 'string' ? body : Buffer.from(body) }
              : {}),
          };
          const answer = await send(ingress, sent);
          // A 404 for a path outside /r/{route} (e.g. "/r/..") is the catch-all's, also a problem document.
          expectDocumented(answer, 'transparent', ledger, { method });
        },
      ),
      { numRuns: 250 },
    );
    await expectRecordsOfAccepted(ingress, ledger);
    expect(ledger.ids.size).toBeGreaterThan(10);
  });
});

describe('the transparent form, well-formed', () => {
  it('enqueues the method, path, query and body as they were sent', async () => {
    const sentById = new Map<string, { method: string; path: string; query: object; body?: string }>();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...httpMethods),
        fc.array(segment, { maxLength: 4 }).map((segments) => `/${segments.join('/')}`),
        fc.dictionary(
          fc.stringMatching(/^[a-z][a-z0-9_]{0,5}$/),
          fc.array(fc.string({ unit: 'grapheme', maxLength: 8 }), { minLength: 1, maxLength: 3 }),
          { maxKeys: 3 },
        ),
        fc.string({ unit: 'grapheme', minLength: 1, maxLength: 60 }),
        async (method, path, query, text) => {
          const search = Object.entries(query)
            .flatMap(([name, values]) => values.map((v) => `${name}=${encodeURIComponent(v)}`))
            .join('&');
          const body = method === 'GET' || method === 'HEAD' ? undefined : text;
          const answer = await send(ingress, {
            method,
            path: `/r/echo${path}${search ? `?${search}` : ''}`,
            headers: { ...bearer, 'content-type': 'text/plain; charset=utf-8' },
            ...(body !== undefined ? { body } : {}),
          });
          expect(answer.status, answer.body.toString()).toBe(202);
          expectDocumented(answer, 'transparent', ledger, { method });
          const id = String(answer.headers['sluice-request-id']);
          sentById.set(id, { method, path, query: collapse(query), ...(body !== undefined ? { body } : {}) });
        },
      ),
      { numRuns: 100 },
    );
    await expectRecordsOfAccepted(ingress, ledger);
    const records = (await readTopic(ingress.kafka, ingress.topic('requests'))).map((record) => {
      const decoded = codecs.request.decode(record);
      if (!decoded.ok) throw new Error(decoded.detail);
      return decoded.value;
    });
    expect(records).toHaveLength(sentById.size);
    for (const record of records) {
      const sent = sentById.get(record.id);
      expect({
        method: record.method,
        path: record.path,
        query: record.query,
        body: record.body?.data,
      }).toEqual({
        ...sent,
        body: sent?.body,
      });
    }
  });
});

/** A query as the ingress records it: one value as a string, several as an array. */
function collapse(query: Record<string, string[]>): Record<string, string | string[]> {
  return Object.fromEntries(
    Object.entries(query).map(([name, values]) => [
      name,
      values.length === 1 ? (values[0] as string) : values,
    ]),
  );
}

describe('control headers', () => {
  it('answers any Prefer, Idempotency-Key and Authorization with a documented response, never a 5xx', async () => {
    const anyHeader = fc.oneof(
      headerValue,
      fc.constantFrom(
        'wait=0',
        'wait=1',
        'wait=60',
        'wait=61',
        'wait=-1',
        'wait=1.5',
        'wait="2"',
        'wait',
        'wait=',
        'respond-async, wait=1',
        'wait=1;foo, wait=2',
        'handling=strict',
        `Bearer ${keys.acme}`,
        `bearer   ${keys.acme}`,
        `Bearer ${keys.admin}`,
        `Bearer ${keys.nobody}`,
        `Basic ${Buffer.from('acme:x').toString('base64')}`,
        'Bearer ',
        `Bearer ${'k'.repeat(600)}`,
      ),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('/v1/requests', '/v1/batches', '/r/echo/x'),
        fc.record(
          {
            prefer: anyHeader,
            'idempotency-key': anyHeader,
            authorization: fc.oneof({ weight: 2, arbitrary: fc.constant(bearer.authorization) }, anyHeader),
          },
          { requiredKeys: ['authorization'] },
        ),
        async (target, headers) => {
          // Prefer: wait holds a valid request for up to N seconds; keep waits short so the runs stay quick.
          const wait = /wait\s*=\s*"?(\d+)/i.exec(headers.prefer ?? '');
          if (wait !== null && Number(wait[1]) > 1 && Number(wait[1]) <= 60) headers.prefer = 'wait=1';
          const sentHeaders: Record<string, string> = { ...headers };
          const item = { route: 'echo', method: 'POST', path: '/p', body: { n: 1 } };
          const answer =
            target === '/r/echo/x'
              ? await send(ingress, { method: 'POST', path: target, headers: sentHeaders, body: 'text' })
              : await send(ingress, {
                  method: 'POST',
                  path: target,
                  headers: { 'content-type': 'application/json', ...sentHeaders },
                  body: JSON.stringify(target === '/v1/batches' ? { requests: [item, item] } : item),
                });
          expectDocumented(answer, target === '/r/echo/x' ? 'transparent' : target, ledger, {
            itemCount: target === '/v1/batches' ? 2 : undefined,
          });
        },
      ),
      { numRuns: 120 },
    );
    await expectRecordsOfAccepted(ingress, ledger);
    expect(ledger.ids.size).toBeGreaterThan(10);
  });
});
