import { Writable } from 'node:stream';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { TracerProvider } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/logger.ts';

const manager = new AsyncLocalStorageContextManager();
beforeAll(() => {
  context.setGlobalContextManager(manager.enable());
});
afterAll(() => {
  manager.disable();
  context.disable();
});

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, logger: createLogger('test', 'info', 'test-1', stream) };
}

describe('logs', () => {
  it('name the trace and span of the context they are written in', () => {
    const { lines, logger } = capture();
    const span = new TracerProvider().getTracer('test').startSpan('work');
    context.with(trace.setSpan(context.active(), span), () => logger.info('inside'));
    logger.info('outside');
    expect(lines[0]).toMatchObject({
      msg: 'inside',
      trace_id: span.spanContext().traceId,
      span_id: span.spanContext().spanId,
    });
    expect(lines[1]?.trace_id).toBeUndefined();
  });

  it('never carry request bodies, API keys or webhook secrets', () => {
    const { lines, logger } = capture();
    logger.info(
      {
        request: {
          headers: { authorization: 'Bearer sk_live_x' },
          body: '{"card":"4111"}',
          bodyBase64: 'eyJ9',
        },
        tenant: { apiKey: 'sk_live_y', webhookSecret: 'whsec_zzz' },
      },
      'careless',
    );
    const text = JSON.stringify(lines[0]);
    for (const secret of ['sk_live_x', '4111', 'eyJ9', 'sk_live_y', 'whsec_zzz'])
      expect(text).not.toContain(secret);
    expect(text).toContain('[redacted]');
  });

  it('redact credentials of other schemes too, at the top level and nested, and keep the rest', () => {
    const { lines, logger } = capture();
    logger.info(
      {
        authorization: 'Bearer sk_top',
        headers: { 'x-api-key': 'key_nested', cookie: 'sid=cookie_val', 'content-type': 'application/json' },
        upstream: {
          response: { headers: { 'set-cookie': 'sid=set_val', 'proxy-authorization': 'Basic prx' } },
        },
      },
      'careless',
    );
    const text = JSON.stringify(lines[0]);
    for (const secret of ['sk_top', 'key_nested', 'cookie_val', 'set_val', 'prx'])
      expect(text).not.toContain(secret);
    expect(lines[0]).toMatchObject({ headers: { 'content-type': 'application/json' } });
  });
});
