import type { Counter, Meter } from '@opentelemetry/api';
import type { WebhookOutcome } from './webhook.ts';

/** Delivery outcomes: webhooks by outcome and status, result-topic publications, dead letters. */
export class DeliveryMetrics {
  readonly #webhooks: Counter;
  readonly #resultTopic: Counter;
  readonly #deadLetters: Counter;

  constructor(meter: Meter) {
    this.#webhooks = meter.createCounter('sluice.delivery.webhooks', {
      unit: '{webhook}',
      description:
        'Webhook tries by outcome (delivered, retry, dead-lettered) and status code or error type.',
    });
    this.#resultTopic = meter.createCounter('sluice.delivery.result_topic', {
      unit: '{event}',
      description: "Completions published to tenants' result topics, by kind (request, batch).",
    });
    this.#deadLetters = meter.createCounter('sluice.dead_letters', {
      unit: '{record}',
      description: 'Records dead-lettered by delivery.',
    });
  }

  webhook(outcome: 'delivered' | 'retry' | 'dead-lettered', result: WebhookOutcome): void {
    this.#webhooks.add(1, {
      outcome,
      ...(result.kind === 'response'
        ? { 'http.response.status_code': result.status }
        : { 'error.type': result.code }),
    });
  }

  resultTopic(kind: string): void {
    this.#resultTopic.add(1, { kind });
  }

  deadLettered(count: number): void {
    this.#deadLetters.add(count, { service: 'delivery' });
  }
}
