import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { latencyBucketsSeconds, startTelemetry } from '../src/index.ts';

describe('startTelemetry', () => {
  it('serves its instruments in the Prometheus text format, with the service as target info', async () => {
    const telemetry = startTelemetry({
      name: 'test',
      version: '1.2.3',
      instance: 'test-1',
      region: 'eu-west',
    });
    const counter = telemetry.meter.createCounter('sluice.requests.accepted', {
      unit: '{request}',
      description: 'Requests answered 202.',
    });
    const histogram = telemetry.meter.createHistogram('http.server.request.duration', {
      unit: 's',
      advice: { explicitBucketBoundaries: latencyBucketsSeconds },
    });
    counter.add(3, { 'sluice.route': 'orders' });
    histogram.record(0.004, { 'http.response.status_code': 202 });
    const server = createServer((req, res) => telemetry.metricsHandler(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`);
      const text = await response.text();
      expect(text).toMatch(/^sluice_requests_accepted_total\{.*sluice_route="orders".*\} 3/m);
      expect(text).toMatch(/^http_server_request_duration_bucket\{.*le="0.005".*\} 1/m);
      expect(text).toContain('# HELP sluice_requests_accepted_total Requests answered 202.');
      expect(text).toMatch(/^target_info\{.*service_name="sluice-test".*service_version="1.2.3".*\} 1/m);
    } finally {
      server.close();
      await telemetry.shutdown();
    }
  });
});
