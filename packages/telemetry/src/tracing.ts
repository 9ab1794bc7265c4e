import {
  type Attributes,
  type Context,
  context,
  type Link,
  propagation,
  type Span,
  type SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import type { Resource } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import {
  BatchSpanProcessor,
  ParentBasedSampler,
  type Sampler,
  SamplingDecision,
  type SamplingResult,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace';

/** A span started with this attribute is always sampled: errors and dead letters are kept whatever the ratio. */
export const forceSampleAttribute = 'sluice.sample.force';

/**
 * Parent-based ratio sampling, except for spans marked with {@link forceSampleAttribute} at their start (a failed
 * try recorded after the fact, a dead letter), which are always kept.
 */
export class KeepErrorsSampler implements Sampler {
  readonly #inner: Sampler;

  constructor(ratio: number) {
    this.#inner = new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
  }

  shouldSample(
    ctx: Context,
    traceId: string,
    name: string,
    kind: SpanKind,
    attributes: Attributes,
    links: Link[],
  ): SamplingResult {
    if (attributes[forceSampleAttribute] === true) return { decision: SamplingDecision.RECORD_AND_SAMPLED };
    return this.#inner.shouldSample(ctx, traceId, name, kind, attributes, links);
  }

  toString(): string {
    return `KeepErrorsSampler{${this.#inner.toString()}}`;
  }
}

export interface TracingOptions {
  resource: Resource;
  /** OTLP http/protobuf endpoint (the collector's base URL); no export without it, propagation still works. */
  otlpEndpoint?: string | undefined;
  sampleRatio: number;
  /** How long finished spans wait to be exported together. */
  exportDelayMs: number;
}

/**
 * Starts the OpenTelemetry Node SDK for traces. A failure here is reported and otherwise ignored: telemetry must
 * never stop the service. Returns the shutdown (flush) to run last.
 */
export function startTracing(
  options: TracingOptions,
  onError: (error: unknown) => void,
): () => Promise<void> {
  try {
    const exporter =
      options.otlpEndpoint === undefined
        ? undefined
        : new OTLPTraceExporter({ url: `${options.otlpEndpoint.replace(/\/+$/, '')}/v1/traces` });
    const sdk = new NodeSDK({
      resource: options.resource,
      sampler: new KeepErrorsSampler(options.sampleRatio),
      spanProcessors: exporter
        ? [new BatchSpanProcessor({ exporter, scheduledDelayMillis: options.exportDelayMs })]
        : [],
      // A batch completion links to up to 1000 requests' traces.
      spanLimits: { linkCountLimit: 1_000 },
      textMapPropagator: new W3CTraceContextPropagator(),
      instrumentations: [],
      autoDetectResources: false,
    });
    sdk.start();
    return async () => {
      try {
        await sdk.shutdown();
      } catch (error) {
        onError(error);
      }
    };
  } catch (error) {
    onError(error);
    return async () => {};
  }
}

/** The trace context of `ctx` (the active one by default) as W3C headers, for a Kafka record or an HTTP call. */
export function traceHeaders(ctx: Context = context.active()): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  return carrier;
}

/** The context carried by W3C headers (of a consumed record, of an incoming request). */
export function contextFrom(
  headers: Record<string, string | string[] | undefined>,
  base: Context = context.active(),
): Context {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) flat[name.toLowerCase()] = Array.isArray(value) ? (value[0] ?? '') : value;
  }
  return propagation.extract(base, flat);
}

/** A link to the span a set of W3C headers names, or undefined when they carry none. */
export function linkFrom(headers: Record<string, string>): Link | undefined {
  const span = trace.getSpanContext(contextFrom(headers));
  return span === undefined ? undefined : { context: span };
}

/** Runs `work` inside a new span that is ended (with an error status when `work` throws) afterwards. */
export async function inSpan<T>(
  tracer: Tracer,
  name: string,
  options: { kind?: SpanKind; attributes?: Attributes; links?: Link[]; parent?: Context },
  work: (span: Span) => Promise<T>,
): Promise<T> {
  const parent = options.parent ?? context.active();
  const span = tracer.startSpan(
    name,
    {
      ...(options.kind !== undefined ? { kind: options.kind } : {}),
      ...(options.attributes ? { attributes: options.attributes } : {}),
      ...(options.links ? { links: options.links } : {}),
    },
    parent,
  );
  try {
    return await context.with(trace.setSpan(parent, span), () => work(span));
  } catch (error) {
    span.recordException(error as Error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
    throw error;
  } finally {
    span.end();
  }
}
