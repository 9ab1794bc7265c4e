import type { RequestCompletion } from '@sluice/contracts';
import { Kafka } from 'cloudevents';
import { describe, expect, it } from 'vitest';
import { messageIdOf, resultTopicRecord, webhookPayload } from '../src/events.ts';

const completion: RequestCompletion = {
  kind: 'request',
  tenant: 'acme',
  batchId: 'r-1',
  id: 'r-1',
  status: {
    id: 'r-1',
    batchId: 'r-1',
    single: true,
    tenant: 'acme',
    route: 'orders',
    status: 'succeeded',
    attempts: 1,
    result: { status: 200, headers: {}, body: 'ok' },
    timings: { acceptedAt: 1_700_000_000_000, finishedAt: 1_700_000_000_500 },
    idempotency: { key: 'k', fingerprint: 'secret-ish' },
    updatedAt: 1_700_000_000_500,
  },
};

describe('result-topic records', () => {
  it('are binary-mode CloudEvents keyed by the request id that the SDK reads back', () => {
    const record = resultTopicRecord('sluice.tenant.acme.results.v1', completion);
    expect(record.key).toBe('r-1');
    expect(record.headers?.ce_type).toBe('dev.sluice.request.completed');
    expect(record.headers?.ce_specversion).toBe('1.0');
    const value = String(record.value);
    const message = { headers: record.headers ?? {}, key: 'r-1', value, body: value };
    const event = Kafka.toEvent(message);
    expect(Array.isArray(event)).toBe(false);
    const single = event as { id: string; source: string; time?: string; data?: unknown };
    expect(single.id).toBe(messageIdOf(completion));
    expect(single.source).toBe('/sluice/tenants/acme');
    expect(single.time).toBe('2023-11-14T22:13:20.500Z');
    const data = typeof single.data === 'string' ? JSON.parse(single.data) : single.data;
    expect(data).toMatchObject({ id: 'r-1', status: 'succeeded', result: { status: 200 } });
  });

  it('carry a message id per ending: a redriven request ends again under another id', () => {
    expect(messageIdOf(completion)).toBe('msg_request_r-1');
    const redriven = { ...completion, status: { ...completion.status, generation: 2 } };
    expect(messageIdOf(redriven)).toBe('msg_request_r-1_r2');
  });

  it('never carry internal fields such as the tenant or the idempotency fingerprint', () => {
    const value = String(resultTopicRecord('t', completion).value);
    const payload = webhookPayload(completion, new Date(0));
    for (const text of [value, payload]) {
      expect(text).not.toContain('secret-ish');
      expect(text).not.toContain('"tenant"');
    }
  });
});
