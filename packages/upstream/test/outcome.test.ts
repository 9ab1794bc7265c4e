import { describe, expect, it } from 'vitest';
import {
  backoffDelayMs,
  classify,
  decideRetry,
  forwardableHeaders,
  resultOf,
  retryAfterMs,
  type UpstreamOutcome,
  UpstreamPathError,
  upstreamUrl,
} from '../src/index.ts';

const response = (status: number): UpstreamOutcome => ({
  kind: 'response',
  status,
  headers: {},
  body: Buffer.alloc(0),
  durationMs: 1,
});

describe('classify', () => {
  it.each([
    [200, 'success'],
    [204, 'success'],
    [302, 'success'],
    [400, 'failure'],
    [404, 'failure'],
    [408, 'failure'],
    [500, 'failure'],
    [429, 'retry'],
    [502, 'retry'],
    [503, 'retry'],
    [504, 'retry'],
  ] as const)('status %i is %s', (status, verdict) => {
    expect(classify(response(status))).toBe(verdict);
  });

  it.each([
    ['UPSTREAM_CONNECT', 'retry'],
    ['UPSTREAM_TIMEOUT', 'retry'],
    ['UPSTREAM_RESET', 'retry'],
    ['UPSTREAM_RESPONSE_TOO_LARGE', 'failure'],
    ['UPSTREAM_INVALID_REQUEST', 'failure'],
    ['UPSTREAM_ABORTED', 'failure'],
  ] as const)('error %s is %s', (code, verdict) => {
    expect(classify({ kind: 'error', code, message: '', durationMs: 1 })).toBe(verdict);
  });
});

describe('retryAfterMs', () => {
  const now = Date.parse('2026-11-24T12:00:00Z');
  it('reads delay-seconds and HTTP dates, and ignores what it cannot read', () => {
    expect(retryAfterMs('3', now)).toBe(3_000);
    expect(retryAfterMs('Tue, 24 Nov 2026 12:00:05 GMT', now)).toBe(5_000);
    expect(retryAfterMs('Tue, 24 Nov 2026 11:00:00 GMT', now)).toBe(0);
    expect(retryAfterMs('soon', now)).toBeUndefined();
    expect(retryAfterMs('-1', now)).toBeUndefined();
    expect(retryAfterMs(undefined, now)).toBeUndefined();
  });
});

describe('backoffDelayMs', () => {
  const policy = { baseDelayMs: 100, maxDelayMs: 1_000 };
  it('stays within [0, min(max, base·2^(n-1))] and uses the whole range', () => {
    expect(backoffDelayMs(1, policy, () => 0.999)).toBe(99);
    expect(backoffDelayMs(3, policy, () => 0.999)).toBe(399);
    expect(backoffDelayMs(10, policy, () => 0.999)).toBe(999);
    expect(backoffDelayMs(10, policy, () => 0)).toBe(0);
  });
});

describe('decideRetry', () => {
  const base = {
    verdict: 'retry' as const,
    failedTries: 1,
    maxAttempts: 3,
    policy: { baseDelayMs: 100, maxDelayMs: 1_000 },
    retryAfterMs: undefined,
    now: 0,
    deadlineAt: 60_000,
    random: () => 0.5,
  };
  it('retries a retryable failure with a jittered delay', () => {
    expect(decideRetry(base)).toEqual({ retry: true, delayMs: 50 });
  });
  it('honours Retry-After as the lower bound of the delay', () => {
    expect(decideRetry({ ...base, retryAfterMs: 2_000 })).toEqual({ retry: true, delayMs: 2_000 });
  });
  it('stops after the last attempt, at the deadline, and for final answers', () => {
    expect(decideRetry({ ...base, failedTries: 3 })).toEqual({ retry: false, reason: 'attempts-exhausted' });
    expect(decideRetry({ ...base, retryAfterMs: 60_000 })).toEqual({ retry: false, reason: 'deadline' });
    expect(decideRetry({ ...base, verdict: 'failure' })).toEqual({ retry: false, reason: 'not-retryable' });
  });
});

describe('upstreamUrl', () => {
  it('appends the path below the base path and adds the query', () => {
    expect(upstreamUrl('http://api.internal:8080/v2/', '/orders/7', { a: '1', b: ['x', 'y'] }).href).toBe(
      'http://api.internal:8080/v2/orders/7?a=1&b=x&b=y',
    );
    expect(upstreamUrl('https://api.internal', '/').href).toBe('https://api.internal/');
  });

  it.each([
    'orders',
    '//evil.example/x',
    '/../admin',
    '/a/%2e%2e/admin',
    '/a/%2F/b',
    '/a\\b',
    '/a?b=1',
    '/a#frag',
    '/%zz',
    '/a\r\nHost: x',
  ])('refuses %j', (path) => {
    expect(() => upstreamUrl('http://api.internal/v2', path)).toThrow(UpstreamPathError);
  });
});

describe('forwardableHeaders', () => {
  it('drops hop-by-hop headers, those named by Connection, computed ones and Sluice-*', () => {
    expect(
      forwardableHeaders({
        Connection: 'keep-alive, X-Trace-Hop',
        'Keep-Alive': 'timeout=5',
        'Transfer-Encoding': 'chunked',
        'x-trace-hop': '1',
        Host: 'sluice.example',
        'Content-Length': '10',
        'Sluice-Request-Id': 'forged',
        'Content-Type': 'application/json',
        Accept: ['a', 'b'],
      }),
    ).toEqual({ 'content-type': 'application/json', accept: 'a, b' });
  });
});

describe('resultOf', () => {
  const answer = (type: string | undefined, body: Buffer) => ({
    kind: 'response' as const,
    status: 200,
    headers: (type === undefined ? {} : { 'content-type': type }) as Record<string, string>,
    body,
    durationMs: 1,
  });
  it('keeps UTF-8 text of textual types as text and carries anything else base64', () => {
    expect(resultOf(answer('application/json; charset=utf-8', Buffer.from('{"a":"ü"}')))).toMatchObject({
      body: '{"a":"ü"}',
    });
    expect(resultOf(answer('application/vnd.api+json', Buffer.from('{}')))).toMatchObject({ body: '{}' });
    expect(resultOf(answer('image/png', Buffer.from([0x89, 0x50])))).toMatchObject({ bodyBase64: 'iVA=' });
    expect(resultOf(answer('text/plain', Buffer.from([0xff, 0xfe])))).toMatchObject({ bodyBase64: '//4=' });
    expect(resultOf(answer(undefined, Buffer.alloc(0)))).toMatchObject({ body: '' });
  });
});
