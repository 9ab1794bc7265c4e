import { SpanKind, SpanStatusCode, TraceFlags, type Tracer } from '@opentelemetry/api';
import {
  type Attempt,
  codecs,
  type FinishedMessage,
  type HttpResult,
  progressRecord,
  type RequestMessage,
  recordHeaders,
  requestRecord,
  type TerminalStatus,
} from '@sluice/contracts';
import { type GatewayConfig, type RouteConfig, routeNamed } from '@sluice/gateway-config';
import type { ConsumedRecord, Producer, ProducerRecord } from '@sluice/kafka';
import { deadLetterRecord, notBeforeOf, waitUntil } from '@sluice/runtime';
import { forceSampleAttribute, inSpan, traceHeaders } from '@sluice/telemetry';
import {
  type Coalescer,
  classify,
  type Dispatcher,
  decideRetry,
  resultOf,
  retryAfterMs,
  type Target,
  type UpstreamOutcome,
  upstreamUrl,
} from '@sluice/upstream';
import type { WorkerMetrics } from './worker-metrics.ts';

export interface WorkerTopics {
  results: string;
  retries: string;
  deadLetters: string;
}

export interface RequestHandlerDeps {
  producer: Producer;
  /** Shapes and sends tries toward upstreams (admission, target choice, health). */
  dispatcher: Dispatcher;
  /** Sends tries of coalescing routes together. */
  coalescer: Coalescer;
  gateway(): GatewayConfig;
  topics: WorkerTopics;
  tracer: Tracer;
  metrics?: WorkerMetrics | undefined;
  now?: () => number;
  random?: () => number;
}

/**
 * What a batch-worker does with one request record: wait for its not-before time (retry records), give up if
 * its deadline has passed, call its upstream, and then produce exactly one of: a result (succeeded, failed,
 * expired or dead, with a dead letter keeping every attempt), or a retry record for later. Requests with an
 * ordering key retry in place instead, so that a later request with the same key never overtakes them.
 * Each output is acknowledged by Kafka before the record counts as finished (and its offset may be committed).
 */
export class RequestHandler {
  readonly #deps: RequestHandlerDeps;
  readonly #now: () => number;

  constructor(deps: RequestHandlerDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
  }

  handle = async (record: ConsumedRecord, signal: AbortSignal): Promise<void> => {
    const decoded = codecs.request.decode(record);
    if (!decoded.ok) {
      await this.#send([this.#deadLetter(record, decoded.reason, decoded.detail, [])]);
      return;
    }
    const request = decoded.value;
    if (record.topic === this.#deps.topics.retries) await waitUntil(notBeforeOf(record), signal);
    const route = routeNamed(this.#deps.gateway(), request.route);
    if (route === undefined) {
      await this.#send([
        this.#deadLetter(
          record,
          'route-unknown',
          `route "${request.route}" is not configured`,
          request.attempts,
          request,
        ),
        this.#finished(request, 'dead', request.attempts, {
          error: { code: 'ROUTE_UNKNOWN', message: `route "${request.route}" is not configured` },
        }),
      ]);
      return;
    }
    await this.#process(record, request, route, signal);
  };

  async #process(
    record: ConsumedRecord,
    request: RequestMessage,
    route: RouteConfig,
    signal: AbortSignal,
  ): Promise<void> {
    const attempts = [...request.attempts];
    const pending: Array<Promise<void>> = [];
    const startedAt = attempts[0]?.startedAt;
    try {
      for (;;) {
        const now = this.#now();
        if (now >= request.deadlineAt) {
          await this.#send([
            this.#finished(request, 'expired', attempts, { error: deadlinePassed(request) }),
          ]);
          return;
        }
        if (attempts.length === 0) {
          const started = this.#send([this.#started(request, now)]);
          // Observed now, awaited below: a failure while the call runs must not count as an unhandled rejection
          // (which ends the process); the finally block still fails the record with it.
          started.catch(() => {});
          pending.push(started);
        }
        const { outcome, target } = await this.#tracedCall(
          record,
          request,
          attempts.length + 1,
          route,
          signal,
        );
        signal.throwIfAborted();
        const attempt = attemptOf(attempts.length + 1, now, outcome, target);
        attempts.push(attempt);
        const verdict = classify(outcome);
        const result = outcome.kind === 'response' ? resultOf(outcome) : undefined;
        const error = outcome.kind === 'error' ? { code: outcome.code, message: outcome.message } : undefined;
        if (verdict !== 'retry') {
          await this.#send([
            this.#finished(request, verdict === 'success' ? 'succeeded' : 'failed', attempts, {
              result,
              error,
              startedAt: startedAt ?? now,
            }),
          ]);
          return;
        }
        const decision = decideRetry({
          verdict,
          failedTries: attempts.length,
          maxAttempts: route.retry.maxAttempts,
          policy: route.retry,
          retryAfterMs:
            outcome.kind === 'response'
              ? retryAfterMs(outcome.headers['retry-after'], this.#now())
              : undefined,
          now: this.#now(),
          deadlineAt: request.deadlineAt,
          ...(this.#deps.random ? { random: this.#deps.random } : {}),
        });
        if (!decision.retry) {
          const detail =
            decision.reason === 'deadline'
              ? `no time for another try before the deadline after ${attempts.length} tries`
              : `all ${attempts.length} tries failed`;
          await this.#send([
            this.#deadLetter(record, 'retries-exhausted', detail, attempts, request),
            this.#finished(request, 'dead', attempts, {
              result,
              error,
              startedAt: startedAt ?? now,
            }),
          ]);
          return;
        }
        const notBefore = this.#now() + decision.delayMs;
        if (request.key === undefined) {
          this.#deps.metrics?.retried(request.route);
          await this.#send([
            requestRecord(this.#deps.topics.retries, { ...request, attempts }, {}, notBefore),
          ]);
          return;
        }
        await waitUntil(notBefore, signal);
      }
    } finally {
      await Promise.all(pending);
    }
  }

  /**
   * One try as an HTTP CLIENT span (the upstream receives its trace context). A failed try is always kept: when
   * the trace was not sampled, a forced-sampled span records the failure.
   */
  async #tracedCall(
    record: ConsumedRecord,
    request: RequestMessage,
    number: number,
    route: RouteConfig,
    signal: AbortSignal,
  ): Promise<{ outcome: UpstreamOutcome; target: Target }> {
    const tracer = this.#deps.tracer;
    const startedAt = Date.now();
    const result = await inSpan(
      tracer,
      request.method,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'http.request.method': request.method,
          'sluice.request_id': request.id,
          'sluice.route': request.route,
          'sluice.attempt': number,
        },
      },
      async (span) => {
        const sent = await this.#call(record, request, number > 1, route, signal);
        const attributes = attemptAttributes(request, number, sent);
        span.setAttributes(attributes);
        if (sent.outcome.kind === 'error' || sent.outcome.status >= 500)
          span.setStatus({ code: SpanStatusCode.ERROR });
        if (!isSampled(span) && classify(sent.outcome) !== 'success') {
          tracer
            .startSpan(`${request.method} failed`, {
              kind: SpanKind.CLIENT,
              startTime: startedAt,
              attributes: { ...attributes, [forceSampleAttribute]: true },
              links: [{ context: span.spanContext() }],
            })
            .end();
        }
        return sent;
      },
    );
    this.#deps.metrics?.attempt(request, result.target, result.outcome);
    return result;
  }

  /** One try through the traffic engine: it waits for admission, picks the target and reports the outcome. */
  async #call(
    record: ConsumedRecord,
    request: RequestMessage,
    isRetry: boolean,
    route: RouteConfig,
    signal: AbortSignal,
  ): Promise<{ outcome: UpstreamOutcome; target: Target }> {
    const body =
      request.body === undefined
        ? undefined
        : Buffer.from(request.body.data, request.body.encoding === 'base64' ? 'base64' : 'utf8');
    const maxResponseBytes = this.#deps.gateway().limits.maxResponseBytes;
    const source = { topic: record.topic, partition: record.partition };
    if (route.coalesce !== undefined) {
      return await this.#deps.coalescer.send(
        request.route,
        {
          id: request.id,
          tenant: request.tenant,
          lane: request.priority,
          isRetry,
          source,
          body,
          timeoutMs: route.timeoutMs,
          maxResponseBytes,
        },
        signal,
      );
    }
    return await this.#deps.dispatcher.send(
      {
        route: request.route,
        tenant: request.tenant,
        lane: request.priority,
        hashKey: hashKeyOf(request, route),
        isRetry,
        source,
        call: (target) => ({
          upstream: request.route,
          url: upstreamUrl(target.url, request.path, request.query),
          method: request.method,
          // The try's own span is the upstream's parent.
          headers: { ...request.headers, ...traceHeaders() },
          ...(body !== undefined ? { body } : {}),
          timeoutMs: route.timeoutMs,
          maxResponseBytes,
          idempotencyKey: request.id,
        }),
      },
      signal,
    );
  }

  #send(records: ProducerRecord[]): Promise<void> {
    const deadLetters = records.filter((record) => record.topic === this.#deps.topics.deadLetters);
    if (deadLetters.length === 0) return this.#deps.producer.send(records);
    // Dead letters are always kept in traces, whatever the sampling ratio.
    for (const letter of deadLetters)
      this.#deps.metrics?.deadLettered(letter.headers?.[recordHeaders.deadLetterReason] ?? 'unknown');
    return inSpan(
      this.#deps.tracer,
      'dead-letter',
      {
        kind: SpanKind.PRODUCER,
        attributes: { [forceSampleAttribute]: true, 'sluice.dead_letter.count': deadLetters.length },
      },
      () => this.#deps.producer.send(records),
    );
  }

  #started(request: RequestMessage, startedAt: number): ProducerRecord {
    return progressRecord(this.#deps.topics.results, { kind: 'started', ...refOf(request), startedAt });
  }

  #finished(
    request: RequestMessage,
    status: TerminalStatus,
    attempts: Attempt[],
    extra: {
      result?: HttpResult | undefined;
      error?: FinishedMessage['error'] | undefined;
      startedAt?: number | undefined;
    },
  ): ProducerRecord {
    const message: FinishedMessage = {
      kind: 'finished',
      ...refOf(request),
      status,
      attempts,
      ...(extra.result !== undefined ? { result: extra.result } : {}),
      ...(extra.error !== undefined ? { error: extra.error } : {}),
      ...(extra.startedAt !== undefined ? { startedAt: extra.startedAt } : {}),
      finishedAt: this.#now(),
    };
    return progressRecord(this.#deps.topics.results, message);
  }

  #deadLetter(
    record: ConsumedRecord,
    reason: Parameters<typeof deadLetterRecord>[0]['reason'],
    detail: string,
    attempts: Attempt[],
    request?: RequestMessage,
  ): ProducerRecord {
    return deadLetterRecord({
      topic: this.#deps.topics.deadLetters,
      service: 'batch-worker',
      record,
      reason,
      detail,
      attempts,
      requestId: request?.id,
      tenant: request?.tenant,
      now: this.#now(),
    });
  }
}

function refOf(request: RequestMessage) {
  return {
    id: request.id,
    batchId: request.batchId,
    tenant: request.tenant,
    route: request.route,
    acceptedAt: request.acceptedAt,
    ...(request.idempotency !== undefined ? { idempotency: request.idempotency } : {}),
  };
}

function attemptAttributes(
  request: RequestMessage,
  number: number,
  { outcome, target }: { outcome: UpstreamOutcome; target: Target },
): Record<string, string | number> {
  const url = new URL(target.url);
  return {
    'http.request.method': request.method,
    'server.address': url.hostname,
    'server.port': Number(url.port || (url.protocol === 'https:' ? 443 : 80)),
    'url.full': `${url.origin}${url.pathname}`,
    'sluice.route': request.route,
    'sluice.target': target.id,
    'sluice.attempt': number,
    ...(outcome.kind === 'response'
      ? { 'http.response.status_code': outcome.status }
      : { 'error.type': outcome.code }),
  };
}

function isSampled(span: { spanContext(): { traceFlags: number } }): boolean {
  return (span.spanContext().traceFlags & TraceFlags.SAMPLED) === TraceFlags.SAMPLED;
}

/** What consistent hashing hashes for this request, as the route says. */
function hashKeyOf(request: RequestMessage, route: RouteConfig): string | undefined {
  const on = route.upstream.hashOn;
  if (on === 'key') return request.key ?? request.id;
  if (on === 'path') return request.path;
  return request.headers[on.header];
}

function attemptOf(number: number, startedAt: number, outcome: UpstreamOutcome, target: Target): Attempt {
  return {
    number,
    startedAt,
    durationMs: outcome.durationMs,
    target: new URL(target.url).origin,
    ...(outcome.kind === 'response'
      ? { status: outcome.status }
      : { error: { code: outcome.code, message: outcome.message } }),
  };
}

function deadlinePassed(request: RequestMessage) {
  return {
    code: 'DEADLINE_PASSED',
    message: `the deadline ${new Date(request.deadlineAt).toISOString()} passed before a try`,
  };
}
