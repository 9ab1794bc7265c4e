import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Meter, type Tracer, trace } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { startTracing } from './tracing.ts';

export interface ServiceIdentity {
  name: string;
  version: string;
  instance: string;
  region: string;
}

export interface Telemetry {
  meter: Meter;
  tracer: Tracer;
  /** Answers a Prometheus scrape (text exposition format). */
  metricsHandler(req: IncomingMessage, res: ServerResponse): void;
  shutdown(): Promise<void>;
}

export interface TraceSettings {
  otlpEndpoint?: string | undefined;
  sampleRatio: number;
  exportDelayMs: number;
}

/**
 * OpenTelemetry for one service. Traces: the Node SDK, exporting OTLP http/protobuf when an endpoint is set,
 * parent-based ratio sampling that always keeps errors and dead letters, W3C trace context propagation. Metrics:
 * a MeterProvider of this instance read by the Prometheus exporter on the service's own HTTP server (`/metrics`).
 * The resource names the service, its version, instance and region. Starting never throws: a telemetry failure
 * is reported to `onError` and the service runs on.
 */
export function startTelemetry(
  identity: ServiceIdentity,
  traces: TraceSettings = { sampleRatio: 1, exportDelayMs: 2_000 },
  onError: (error: unknown) => void = () => {},
): Telemetry {
  const resource = resourceFromAttributes({
    [ATTR_SERVICE_NAME]: `sluice-${identity.name}`,
    [ATTR_SERVICE_VERSION]: identity.version,
    'service.instance.id': identity.instance,
    'cloud.region': identity.region,
  });
  const stopTracing = startTracing({ resource, ...traces }, onError);
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const provider = new MeterProvider({ resource, readers: [exporter] });
  return {
    meter: provider.getMeter(`sluice-${identity.name}`, identity.version),
    tracer: trace.getTracer(`sluice-${identity.name}`, identity.version),
    metricsHandler: (req, res) => exporter.getMetricsRequestHandler(req, res),
    shutdown: async () => {
      await stopTracing();
      await provider.shutdown();
    },
  };
}

/** Histogram buckets in seconds for request latencies, from 1 ms to a minute. */
export const latencyBucketsSeconds = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

export {
  contextFrom,
  forceSampleAttribute,
  inSpan,
  KeepErrorsSampler,
  linkFrom,
  startTracing,
  type TracingOptions,
  traceHeaders,
} from './tracing.ts';
