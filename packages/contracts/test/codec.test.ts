import { describe, expect, it } from 'vitest';
import {
  codecs,
  isId,
  newId,
  type RequestMessage,
  recordHeaders,
  requestRecordKey,
  type StatusMessage,
  statusRank,
  statusRecord,
} from '../src/index.ts';

const status: StatusMessage = {
  id: 'x',
  batchId: 'x',
  single: true,
  tenant: 'acme',
  route: 'orders',
  status: 'queued',
  attempts: 0,
  timings: { acceptedAt: 1 },
  updatedAt: 1,
};

const request: RequestMessage = {
  id: newId(),
  batchId: newId(),
  batchSize: 1,
  tenant: 'acme',
  route: 'orders',
  method: 'POST',
  path: '/orders',
  query: { expand: ['items', 'customer'] },
  headers: { 'content-type': 'application/json' },
  body: { encoding: 'utf8', data: '{"sku":"a-1"}' },
  priority: 'normal',
  acceptedAt: 1_700_000_000_000,
  deadlineAt: 1_700_000_060_000,
  attempts: [],
};

describe('codecs', () => {
  it('round-trips a request with its schema version header', () => {
    const encoded = codecs.request.encode(request);
    expect(encoded.headers[recordHeaders.schemaVersion]).toBe('1');
    expect(codecs.request.decode(encoded)).toEqual({ ok: true, value: request });
  });

  it('reports a schema version it does not read, and a missing one', () => {
    const encoded = codecs.request.encode(request);
    const future = codecs.request.decode({ ...encoded, headers: { [recordHeaders.schemaVersion]: '2' } });
    expect(future).toMatchObject({ ok: false, reason: 'unsupported-schema' });
    const missing = codecs.request.decode({ value: encoded.value, headers: {} });
    expect(missing).toMatchObject({ ok: false, reason: 'unsupported-schema' });
  });

  it('reports bytes that are not UTF-8 JSON as undecodable', () => {
    const headers = { [recordHeaders.schemaVersion]: '1' };
    expect(codecs.request.decode({ value: Buffer.from([0xff, 0xfe, 0x00]), headers })).toMatchObject({
      ok: false,
      reason: 'undecodable',
    });
    expect(codecs.request.decode({ value: Buffer.from('{"id":'), headers })).toMatchObject({
      ok: false,
      reason: 'undecodable',
    });
    expect(codecs.request.decode({ value: null, headers })).toMatchObject({
      ok: false,
      reason: 'undecodable',
    });
  });

  it('names the fields of JSON that does not match the schema', () => {
    const { value, headers } = codecs.request.encode(request);
    const broken = { ...JSON.parse(value.toString()), priority: 'urgent', attempts: undefined };
    const decoded = codecs.request.decode({ value: Buffer.from(JSON.stringify(broken)), headers });
    expect(decoded.ok).toBe(false);
    if (decoded.ok) return;
    expect(decoded.reason).toBe('invalid-message');
    expect(decoded.detail).toContain('priority');
    expect(decoded.detail).toContain('attempts');
  });

  it('tells the progress kinds apart', () => {
    const encoded = codecs.progress.encode({
      kind: 'started',
      id: request.id,
      batchId: request.batchId,
      tenant: 'acme',
      route: 'orders',
      acceptedAt: request.acceptedAt,
      startedAt: request.acceptedAt + 5,
    });
    const decoded = codecs.progress.decode(encoded);
    expect(decoded.ok && decoded.value.kind).toBe('started');
  });
});

describe('statusRank', () => {
  it('orders queued before processing before every terminal status', () => {
    expect(statusRank('queued')).toBeLessThan(statusRank('processing'));
    for (const terminal of ['succeeded', 'failed', 'expired', 'dead'] as const) {
      expect(statusRank('processing')).toBeLessThan(statusRank(terminal));
    }
  });
});

describe('requestRecordKey', () => {
  it('keys by ordering key scoped to tenant and route, else by id', () => {
    expect(requestRecordKey({ ...request, key: 'customer-7' })).toBe('acme/orders/customer-7');
    expect(requestRecordKey(request)).toBe(request.id);
  });
});

describe('ids', () => {
  it('are UUIDv7 and increase with time', () => {
    const first = newId();
    const second = newId();
    expect(isId(first)).toBe(true);
    expect(isId('not-an-id')).toBe(false);
    expect(second > first).toBe(true);
  });
});

describe('record builders', () => {
  it('key a status by request id and carry the given trace context with the id headers', () => {
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const record = statusRecord('status', { ...status, id: 'r-1' }, { traceparent });
    expect(record.headers.traceparent).toBe(traceparent);
    expect(record.headers[recordHeaders.requestId]).toBe('r-1');
    expect(record.key).toBe('r-1');
  });
});
