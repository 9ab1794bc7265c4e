import { SpanKind, SpanStatusCode, type Tracer } from '@opentelemetry/api';
import {
  type Attempt,
  type CompletionMessage,
  codecs,
  tenantResultTopicName,
  webhookRetryRecord,
} from '@sluice/contracts';
import type { GatewayConfig } from '@sluice/gateway-config';
import type { ConsumedRecord, Producer, ProducerRecord } from '@sluice/kafka';
import { deadLetterRecord, notBeforeOf, waitUntil } from '@sluice/runtime';
import { forceSampleAttribute, inSpan, traceHeaders } from '@sluice/telemetry';
import { backoffDelayMs, retryAfterMs } from '@sluice/upstream';
import type { DeliveryMetrics } from './delivery-metrics.ts';
import { messageIdOf, resultTopicRecord, webhookPayload } from './events.ts';
import { type WebhookOutcome, type WebhookSender, webhookVerdict } from './webhook.ts';

export interface DeliveryTopics {
  completions: string;
  webhookRetries: string;
  deadLetters: string;
  prefix: string;
}

export interface WebhookPolicy {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export interface DelivererDeps {
  producer: Producer;
  sender: WebhookSender;
  gateway(): GatewayConfig;
  topics: DeliveryTopics;
  policy: WebhookPolicy;
  tracer: Tracer;
  metrics?: DeliveryMetrics | undefined;
  now?: () => number;
}

/**
 * Delivers completions as their submitters asked: every completion of a tenant with a result topic is
 * published there as a CloudEvent; a completion with a callback is sent as a signed webhook, retried from the
 * webhook retry topic after each failure (backoff with full jitter, Retry-After honoured) and dead-lettered
 * after the last try. The status lookups read was written by the aggregator already.
 */
export class Deliverer {
  readonly #deps: DelivererDeps;
  readonly #now: () => number;

  constructor(deps: DelivererDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
  }

  handle = async (record: ConsumedRecord, signal: AbortSignal): Promise<void> => {
    if (record.topic === this.#deps.topics.webhookRetries) {
      const decoded = codecs.webhookRetry.decode(record);
      if (!decoded.ok) return this.#poison(record, decoded.reason, decoded.detail);
      await waitUntil(notBeforeOf(record), signal);
      await this.#webhook(record, decoded.value.completion, decoded.value.attempts);
      return;
    }
    const decoded = codecs.completion.decode(record);
    if (!decoded.ok) return this.#poison(record, decoded.reason, decoded.detail);
    const completion = decoded.value;
    const tenant = this.#deps.gateway().tenants[completion.tenant];
    if (tenant?.resultTopic) {
      await this.#deps.producer.send([
        resultTopicRecord(tenantResultTopicName(completion.tenant, this.#deps.topics.prefix), completion),
      ]);
      this.#deps.metrics?.resultTopic(completion.kind);
    }
    if (completion.callback !== undefined) await this.#webhook(record, completion, []);
  };

  async #webhook(record: ConsumedRecord, completion: CompletionMessage, previous: Attempt[]): Promise<void> {
    const url = completion.callback?.url;
    if (url === undefined) return;
    const secret = this.#deps.gateway().tenants[completion.tenant]?.webhookSecret;
    const attempts = [...previous];
    const startedAt = this.#now();
    const outcome: WebhookOutcome =
      secret === undefined
        ? {
            kind: 'error',
            code: 'WEBHOOK_NO_SECRET',
            message: 'the tenant has no webhook secret',
            retryable: false,
            durationMs: 0,
          }
        : await this.#send(url, secret, completion, startedAt, attempts.length + 1);
    attempts.push({
      number: attempts.length + 1,
      startedAt,
      durationMs: outcome.durationMs,
      target: safeOrigin(url),
      ...(outcome.kind === 'response'
        ? { status: outcome.status }
        : { error: { code: outcome.code, message: outcome.message } }),
    });
    const verdict = webhookVerdict(outcome);
    this.#deps.metrics?.webhook(
      verdict === 'delivered'
        ? 'delivered'
        : verdict === 'retry' && attempts.length < this.#deps.policy.maxAttempts
          ? 'retry'
          : 'dead-lettered',
      outcome,
    );
    if (verdict === 'delivered') return;
    const { policy } = this.#deps;
    if (verdict === 'retry' && attempts.length < policy.maxAttempts) {
      const delay = Math.max(
        backoffDelayMs(attempts.length, policy),
        outcome.kind === 'response' ? (retryAfterMs(outcome.retryAfter, this.#now()) ?? 0) : 0,
      );
      await this.#deps.producer.send([
        webhookRetryRecord(this.#deps.topics.webhookRetries, { completion, attempts }, this.#now() + delay),
      ]);
      return;
    }
    const detail =
      verdict === 'give-up'
        ? `webhook refused for good: ${describe(outcome)}`
        : `all ${attempts.length} webhook tries failed; last: ${describe(outcome)}`;
    await this.#deadLetter([
      deadLetterRecord({
        topic: this.#deps.topics.deadLetters,
        service: 'delivery',
        record,
        reason: 'webhook-failed',
        detail,
        attempts,
        requestId: completion.kind === 'request' ? completion.id : undefined,
        tenant: completion.tenant,
        now: this.#now(),
      }),
    ]);
  }

  /** One webhook try as an HTTP CLIENT span; the receiver gets its trace context. */
  #send(
    url: string,
    secret: string,
    completion: CompletionMessage,
    startedAt: number,
    number: number,
  ): Promise<WebhookOutcome> {
    return inSpan(
      this.#deps.tracer,
      'POST',
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'http.request.method': 'POST',
          'url.full': safeOrigin(url),
          'sluice.webhook.attempt': number,
          'sluice.batch_id': completion.batchId,
          ...(completion.kind === 'request' ? { 'sluice.request_id': completion.id } : {}),
        },
      },
      async (span) => {
        const outcome = await this.#deps.sender.send({
          url,
          secret,
          messageId: messageIdOf(completion),
          payload: webhookPayload(completion, new Date(startedAt)),
          trace: traceHeaders(),
        });
        if (outcome.kind === 'response') span.setAttribute('http.response.status_code', outcome.status);
        else span.setAttribute('error.type', outcome.code);
        if (webhookVerdict(outcome) !== 'delivered') span.setStatus({ code: SpanStatusCode.ERROR });
        return outcome;
      },
    );
  }

  /** Dead letters are always kept in traces, whatever the sampling ratio. */
  #deadLetter(records: ProducerRecord[]): Promise<void> {
    this.#deps.metrics?.deadLettered(records.length);
    return inSpan(
      this.#deps.tracer,
      'dead-letter',
      { kind: SpanKind.PRODUCER, attributes: { [forceSampleAttribute]: true } },
      () => this.#deps.producer.send(records),
    );
  }

  async #poison(
    record: ConsumedRecord,
    reason: Parameters<typeof deadLetterRecord>[0]['reason'],
    detail: string,
  ): Promise<void> {
    await this.#deps.producer.send([
      deadLetterRecord({
        topic: this.#deps.topics.deadLetters,
        service: 'delivery',
        record,
        reason,
        detail,
        now: this.#now(),
      }),
    ]);
  }
}

function describe(outcome: WebhookOutcome): string {
  return outcome.kind === 'response' ? `HTTP ${outcome.status}` : `${outcome.code}: ${outcome.message}`;
}

function safeOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(invalid URL)';
  }
}
