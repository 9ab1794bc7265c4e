import { tryDeadline } from '@sluice/upstream';
import ipaddr from 'ipaddr.js';
import { Webhook } from 'standardwebhooks';
import { Agent, request } from 'undici';
import {
  type CallbackNetworks,
  callbackAddressVerdict,
  ForbiddenAddressError,
  guardedLookup,
} from './address-policy.ts';

export type WebhookOutcome =
  | { kind: 'response'; status: number; retryAfter: string | undefined; durationMs: number }
  | { kind: 'error'; code: string; message: string; retryable: boolean; durationMs: number };

export interface WebhookRequest {
  url: string;
  /** The tenant's Standard Webhooks secret (`whsec_…`). */
  secret: string;
  /** `webhook-id`: the same for every try of one message, so that receivers can drop repeats. */
  messageId: string;
  payload: string;
  /** W3C trace context headers sent with the call, so the receiver can join the request's trace. */
  trace?: Record<string, string>;
}

/**
 * Sends Standard Webhooks: `webhook-id`, `webhook-timestamp` and `webhook-signature` (v1, HMAC-SHA256 over
 * id.timestamp.body with the tenant's secret). Connections go only to public addresses unless the operator
 * allows private networks or lists networks, checked on the address actually connected to; redirects are never
 * followed.
 */
export class WebhookSender {
  readonly #agent: Agent;
  readonly #timeoutMs: number;
  readonly #networks: () => CallbackNetworks;

  constructor(options: { timeoutMs: number; networks(): CallbackNetworks }) {
    this.#timeoutMs = options.timeoutMs;
    this.#networks = options.networks;
    this.#agent = new Agent({
      connect: { lookup: guardedLookup(options.networks), timeout: options.timeoutMs },
      keepAliveTimeout: 30_000,
      connections: 16,
    });
  }

  async send(webhook: WebhookRequest, now = new Date()): Promise<WebhookOutcome> {
    const started = performance.now();
    const elapsed = () => Math.round((performance.now() - started) * 10) / 10;
    let url: URL;
    try {
      url = new URL(webhook.url);
    } catch {
      return {
        kind: 'error',
        code: 'WEBHOOK_INVALID_URL',
        message: 'not a URL',
        retryable: false,
        durationMs: 0,
      };
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      return {
        kind: 'error',
        code: 'WEBHOOK_INVALID_URL',
        message: 'only http and https',
        retryable: false,
        durationMs: 0,
      };
    }
    // An address literal is connected to without a lookup, so it is judged here.
    const literal = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const verdict = ipaddr.isValid(literal) ? callbackAddressVerdict(literal, this.#networks()) : undefined;
    if (verdict !== undefined && !verdict.allowed) {
      const refused = new ForbiddenAddressError(url.hostname, literal, verdict.range);
      return {
        kind: 'error',
        code: 'WEBHOOK_FORBIDDEN_ADDRESS',
        message: refused.message,
        retryable: false,
        durationMs: 0,
      };
    }
    const signature = new Webhook(webhook.secret).sign(webhook.messageId, now, webhook.payload);
    const deadline = tryDeadline(this.#timeoutMs);
    try {
      const response = await request(url, {
        method: 'POST',
        dispatcher: this.#agent,
        headers: {
          ...webhook.trace,
          'content-type': 'application/json',
          'user-agent': 'Sluice-Webhooks/1',
          'webhook-id': webhook.messageId,
          'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
          'webhook-signature': signature,
        },
        body: webhook.payload,
        // tryDeadline is the try's only clock (see there): undici's timers would count our own stalls too.
        headersTimeout: 0,
        bodyTimeout: 0,
        signal: deadline.signal,
      });
      // The receiver's answer body is not needed; reading it frees the connection for reuse.
      await response.body.dump({ limit: 64 * 1024 });
      const retryAfter = response.headers['retry-after'];
      return {
        kind: 'response',
        status: response.statusCode,
        retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
        durationMs: elapsed(),
      };
    } catch (error) {
      const cause = forbiddenCause(error);
      if (cause !== undefined) {
        return {
          kind: 'error',
          code: 'WEBHOOK_FORBIDDEN_ADDRESS',
          message: cause.message,
          retryable: false,
          durationMs: elapsed(),
        };
      }
      const code = (error as { code?: string }).code ?? (error as Error).name;
      return {
        kind: 'error',
        code: `WEBHOOK_${code}`,
        message: (error as Error).message,
        retryable: true,
        durationMs: elapsed(),
      };
    } finally {
      deadline.clear();
    }
  }

  close(): Promise<void> {
    return this.#agent.close();
  }
}

function forbiddenCause(error: unknown): ForbiddenAddressError | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current !== undefined && current !== null; depth += 1) {
    if (current instanceof ForbiddenAddressError) return current;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** A receiver's answer: 2xx is delivered; 410 Gone means the endpoint is gone for good; anything else is retried. */
export function webhookVerdict(outcome: WebhookOutcome): 'delivered' | 'retry' | 'give-up' {
  if (outcome.kind === 'error') return outcome.retryable ? 'retry' : 'give-up';
  if (outcome.status >= 200 && outcome.status < 300) return 'delivered';
  return outcome.status === 410 ? 'give-up' : 'retry';
}
