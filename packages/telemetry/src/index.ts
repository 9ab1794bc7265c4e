import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Meter } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';

export interface ServiceIdentity {
  name: string;
  version: string;
  instance: string;
  region: string;
}

export interface Telemetry {
  meter: Meter;
  /** Answers a Prometheus scrape (text exposition format). */
  metricsHandler(req: IncomingMessage, res: ServerResponse): void;
  shutdown(): Promise<void>;
}

/**
 * OpenTelemetry metrics of one service, read by the Prometheus exporter on the service's own HTTP server
 * (`/metrics`) rather than a port of the exporter's. The resource names the service, its version, instance and
 * region; instrument names follow the OpenTelemetry semantic conventions where they exist.
 */
export function startTelemetry(identity: ServiceIdentity): Telemetry {
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const provider = new MeterProvider({
    resource: resourceFromAttributes({
      [ATTR_SERVICE_NAME]: `sluice-${identity.name}`,
      [ATTR_SERVICE_VERSION]: identity.version,
      'service.instance.id': identity.instance,
      'cloud.region': identity.region,
    }),
    readers: [exporter],
  });
  return {
    meter: provider.getMeter(`sluice-${identity.name}`, identity.version),
    metricsHandler: (req, res) => exporter.getMetricsRequestHandler(req, res),
    shutdown: () => provider.shutdown(),
  };
}

/** Histogram buckets in seconds for request latencies, from 1 ms to a minute. */
export const latencyBucketsSeconds = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];
