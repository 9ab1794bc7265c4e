import { randomUUID } from 'node:crypto';
import {
  checkMetrics,
  type OtlpReceiver,
  type ReceivedSpan,
  serviceNames,
  startOtlpReceiver,
  waitFor,
} from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, terminalStatusOf } from '../src/harness.ts';
import { stackPerFile } from '../src/stack-per-file.ts';
import { ScriptedUpstream } from '../src/upstream.ts';

const upstream = new ScriptedUpstream();
let receiver: OtlpReceiver;
beforeAll(async () => {
  receiver = await startOtlpReceiver();
});
afterAll(async () => {
  await receiver?.close();
});
const stack = stackPerFile(() => ({
  upstream: upstream.handler,
  env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, TRACES_EXPORT_DELAY_MS: '100' },
}));

const kinds = { server: 2, client: 3, producer: 4, consumer: 5 };

describe('one trace per request', () => {
  it('holds spans of all four services and the upstream call, each parent in the trace', async () => {
    const token = randomUUID().slice(0, 8);
    const response = await api(stack(), '/v1/requests', {
      json: {
        route: 'e2e',
        method: 'POST',
        path: `/ok/${token}`,
        callback: { url: `${stack().receiver.url}/hooks/${token}` },
      },
    });
    const { id } = (await response.json()) as { id: string };
    expect((await terminalStatusOf(stack(), id)).status).toBe('succeeded');
    const server = await waitFor('the ingress span', () =>
      receiver.spans.find((s) => s.kind === kinds.server && s.attributes['sluice.request_id'] === id),
    );
    const services = ['sluice-ingress', 'sluice-batch-worker', 'sluice-aggregator', 'sluice-delivery'];
    const trace = await waitFor(
      'spans of the four services, the upstream try and the webhook call',
      () => {
        const spans = receiver.spans.filter((s) => s.traceId === server.traceId);
        const has = (service: string, kind: number, name?: RegExp) =>
          spans.some(
            (s) => s.service === service && s.kind === kind && (name === undefined || name.test(s.name)),
          );
        const complete =
          has('sluice-ingress', kinds.server) &&
          has('sluice-ingress', kinds.producer) &&
          has('sluice-batch-worker', kinds.consumer) &&
          has('sluice-batch-worker', kinds.client) &&
          has('sluice-aggregator', kinds.consumer) &&
          has('sluice-delivery', kinds.consumer) &&
          has('sluice-delivery', kinds.client) &&
          has('sluice-delivery', kinds.producer, /tenant\..*\.results/);
        // Services export their spans in batches of their own: a span can arrive before its parent does.
        // The trace is read once every parent it names has arrived too (the ingress's server span has none).
        const ids = new Set(spans.map((s) => s.spanId));
        const closed = spans.every((s) => s.spanId === server.spanId || ids.has(s.parentSpanId));
        return complete && closed && spans;
      },
      { timeoutMs: 30_000 },
    );
    expect([...new Set(trace.map((s) => s.service))].sort()).toEqual(services.sort());
    const byId = new Map(trace.map((s) => [s.spanId, s]));
    const roots = trace.filter((s) => !byId.has(s.parentSpanId));
    // The only span without its parent in the trace is the ingress's HTTP span (the client sent no context).
    expect(roots.map((s) => `${s.service} ${s.name}`)).toEqual(['sluice-ingress POST /v1/requests']);
    const parentOf = (span: ReceivedSpan) => byId.get(span.parentSpanId);
    const workerConsumer = trace.find(
      (s) => s.service === 'sluice-batch-worker' && s.kind === kinds.consumer,
    ) as ReceivedSpan;
    expect(parentOf(workerConsumer)).toMatchObject({ service: 'sluice-ingress', kind: kinds.producer });
    const attempt = trace.find(
      (s) => s.service === 'sluice-batch-worker' && s.kind === kinds.client,
    ) as ReceivedSpan;
    expect(attempt.attributes).toMatchObject({
      'http.request.method': 'POST',
      'http.response.status_code': 200,
      'sluice.route': 'e2e',
    });
    expect(parentOf(attempt)?.spanId).toBe(workerConsumer.spanId);
    // The upstream received the try's span as its parent.
    const call = stack().upstream.calls.find((c) => c.path.includes(token));
    expect(call?.headers.traceparent).toContain(`-${attempt.spanId}-`);
    const webhook = stack().receiver.calls.find((c) => c.path === `/hooks/${token}`);
    expect(String(webhook?.headers.traceparent)).toContain(server.traceId);
  });

  it("links a batch's completion to the traces of its requests", async () => {
    const requests = Array.from({ length: 3 }, (_, i) => ({
      route: 'e2e',
      method: 'GET',
      path: `/ok/batch-${i}`,
    }));
    const response = await api(stack(), '/v1/batches', { json: { requests } });
    const { batchId } = (await response.json()) as { batchId: string };
    const completion = await waitFor('the batch completion span', () =>
      receiver.spans.find((s) => s.name === 'complete batch' && s.attributes['sluice.batch_id'] === batchId),
    );
    expect(completion.service).toBe('sluice-aggregator');
    expect(completion.links).toHaveLength(3);
    const linked = completion.links.map((link) => receiver.spans.find((s) => s.spanId === link.spanId));
    await waitFor('the linked spans', () =>
      completion.links.every((link) => receiver.spans.some((s) => s.spanId === link.spanId)),
    );
    void linked;
    for (const link of completion.links) {
      const span = receiver.spans.find((s) => s.spanId === link.spanId);
      expect(span).toMatchObject({ service: 'sluice-aggregator', kind: kinds.consumer });
    }
  });

  it('keeps a dead letter in the traces even when its trace is not sampled', async () => {
    const token = randomUUID().slice(0, 8);
    const response = await api(stack(), '/v1/requests', {
      json: { route: 'e2e', method: 'GET', path: `/down/${token}` },
    });
    const { id } = (await response.json()) as { id: string };
    expect((await terminalStatusOf(stack(), id)).status).toBe('dead');
    const deadLetter = await waitFor('the dead-letter span', () =>
      receiver.spans.find(
        (s) =>
          s.name === 'dead-letter' &&
          s.service === 'sluice-batch-worker' &&
          s.attributes['sluice.sample.force'] === true,
      ),
    );
    expect(deadLetter.kind).toBe(kinds.producer);
  });
});

describe('/metrics of every service', () => {
  const scrape = async (name: (typeof serviceNames)[number]) =>
    await (await fetch(`${stack().services[name].url}/metrics`)).text();
  const value = (text: string, name: string, ...labels: string[]) =>
    text
      .split('\n')
      .filter((line) => line.startsWith(`${name}{`) && labels.every((label) => line.includes(label)))
      .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);

  it('pass promtool check metrics with nothing reported, and the key series move with traffic', async () => {
    const before = Object.fromEntries(
      await Promise.all(serviceNames.map(async (n) => [n, await scrape(n)] as const)),
    );
    const token = randomUUID().slice(0, 8);
    const response = await api(stack(), '/v1/requests', {
      json: { route: 'e2e', method: 'GET', path: `/ok/${token}` },
      headers: { prefer: 'wait=20' },
    });
    expect(response.status).toBe(200);
    const after = Object.fromEntries(
      await Promise.all(serviceNames.map(async (n) => [n, await scrape(n)] as const)),
    );
    for (const name of serviceNames) {
      const { code, output } = await checkMetrics(after[name] as string);
      expect(output, `promtool on ${name}`).toBe('');
      expect(code, `promtool on ${name}`).toBe(0);
    }
    const moved = (service: (typeof serviceNames)[number], metric: string, ...labels: string[]) =>
      value(after[service] as string, metric, ...labels) -
      value(before[service] as string, metric, ...labels);
    expect(moved('ingress', 'sluice_requests_accepted_total', 'sluice_route="e2e"')).toBe(1);
    expect(moved('ingress', 'sluice_ingress_accept_duration_count', 'sluice_route="e2e"')).toBe(1);
    expect(
      moved(
        'batch-worker',
        'http_client_request_duration_count',
        'sluice_route="e2e"',
        'http_response_status_code="200"',
      ),
    ).toBeGreaterThanOrEqual(1);
    expect(
      moved('aggregator', 'sluice_request_duration_count', 'sluice_status="succeeded"'),
    ).toBeGreaterThanOrEqual(1);
    for (const name of ['batch-worker', 'aggregator', 'delivery'] as const) {
      expect(after[name], name).toMatch(/^sluice_consumer_lag\{/m);
      expect(after[name], name).toMatch(/^sluice_consumer_records_in_flight\{/m);
      expect(after[name], name).toMatch(/^sluice_config_info\{|^target_info\{/m);
    }
    expect(after['batch-worker']).toMatch(/^sluice_upstream_circuit_state\{/m);
    expect(after['batch-worker']).toMatch(/^sluice_consumer_partitions_paused\{/m);
    expect(after.ingress).toMatch(/^sluice_config_info\{[^}]*version="[0-9a-f]{16}"/m);
  });
});
