import { createHash } from 'node:crypto';
import type { UpstreamOutcome } from '../outcome.ts';
import { upstreamUrl } from '../url.ts';
import type { Dispatcher, DispatchRequest } from './dispatcher.ts';
import { type Lane, lanes, type Target } from './types.ts';

export interface CoalesceSettings {
  maxSize: number;
  maxWaitMs: number;
  /** Path of the batch endpoint below the target URL. */
  path: string;
  itemStatusField: string;
}

/** One request joining a coalesced call: its body becomes one element of the JSON array sent. */
export interface CoalescedItem {
  id: string;
  tenant: string;
  lane: Lane;
  isRetry: boolean;
  source?: DispatchRequest['source'];
  /** The request's body; JSON is sent as the JSON value, anything else as a JSON string. */
  body: Buffer | undefined;
  timeoutMs: number;
  maxResponseBytes: number;
}

interface Pending {
  item: CoalescedItem;
  resolve(result: { outcome: UpstreamOutcome; target: Target }): void;
  reject(reason: unknown): void;
}

/**
 * Request coalescing ("batch optimisation") for upstreams with a JSON-array endpoint: requests of one route wait
 * up to `maxWaitMs` or until `maxSize` have gathered, go as one call whose body is the array of their bodies,
 * and the answer — an array in the same order — is split into one outcome per request. An element carrying a
 * status of 400 or more in `itemStatusField` is that item's failure; a failure of the whole call (a timeout, a
 * 5xx) is every item's, and each then retries on its own.
 */
export class Coalescer {
  readonly #dispatcher: Dispatcher;
  readonly #settings: (route: string) => CoalesceSettings | undefined;
  readonly #buffers = new Map<string, { pending: Pending[]; timer: NodeJS.Timeout | undefined }>();

  constructor(dispatcher: Dispatcher, settings: (route: string) => CoalesceSettings | undefined) {
    this.#dispatcher = dispatcher;
    this.#settings = settings;
  }

  coalesces(route: string): boolean {
    return this.#settings(route) !== undefined;
  }

  send(
    route: string,
    item: CoalescedItem,
    signal: AbortSignal,
  ): Promise<{ outcome: UpstreamOutcome; target: Target }> {
    signal.throwIfAborted();
    const settings = this.#settings(route);
    if (settings === undefined) return Promise.reject(new Error(`route "${route}" does not coalesce`));
    return new Promise((resolve, reject) => {
      let buffer = this.#buffers.get(route);
      if (buffer === undefined) {
        buffer = { pending: [], timer: undefined };
        this.#buffers.set(route, buffer);
      }
      const pending: Pending = { item, resolve, reject };
      buffer.pending.push(pending);
      signal.addEventListener(
        'abort',
        () => {
          const list = this.#buffers.get(route)?.pending;
          const index = list?.indexOf(pending) ?? -1;
          if (list !== undefined && index >= 0) {
            list.splice(index, 1);
            reject(signal.reason);
          }
        },
        { once: true },
      );
      if (buffer.pending.length >= settings.maxSize) {
        this.#flush(route, settings);
      } else if (buffer.timer === undefined) {
        buffer.timer = setTimeout(() => this.#flush(route, settings), settings.maxWaitMs);
        buffer.timer.unref();
      }
    });
  }

  #flush(route: string, settings: CoalesceSettings): void {
    const buffer = this.#buffers.get(route);
    if (buffer === undefined) return;
    if (buffer.timer !== undefined) clearTimeout(buffer.timer);
    buffer.timer = undefined;
    const batch = buffer.pending.splice(0, settings.maxSize);
    if (buffer.pending.length > 0) {
      buffer.timer = setTimeout(() => this.#flush(route, settings), settings.maxWaitMs);
      buffer.timer.unref();
    }
    if (batch.length > 0) void this.#call(route, settings, batch);
  }

  async #call(route: string, settings: CoalesceSettings, batch: Pending[]): Promise<void> {
    const items = batch.map((pending) => pending.item);
    const body = Buffer.from(`[${items.map((item) => jsonElement(item.body)).join(',')}]`);
    const idempotencyKey = `batch-${createHash('sha256')
      .update(items.map((item) => item.id).join(','))
      .digest('hex')
      .slice(0, 32)}`;
    const lane = lanes.find((candidate) => items.some((item) => item.lane === candidate)) ?? 'normal';
    const first = items[0] as CoalescedItem;
    try {
      const { outcome, target } = await this.#dispatcher.send(
        {
          route,
          tenant: first.tenant,
          lane,
          isRetry: items.some((item) => item.isRetry),
          source: first.source,
          call: (chosen) => ({
            upstream: route,
            url: upstreamUrl(chosen.url, settings.path),
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body,
            timeoutMs: Math.max(...items.map((item) => item.timeoutMs)),
            maxResponseBytes: items.reduce((sum, item) => sum + item.maxResponseBytes, 0),
            idempotencyKey,
          }),
        },
        AbortSignal.timeout(Math.max(...items.map((item) => item.timeoutMs)) * 2 + 60_000),
      );
      const outcomes = splitOutcome(outcome, items.length, settings.itemStatusField);
      for (const [index, pending] of batch.entries()) {
        pending.resolve({ outcome: outcomes[index] as UpstreamOutcome, target });
      }
    } catch (error) {
      for (const pending of batch) pending.reject(error);
    }
  }
}

/** One outcome per item from the outcome of the coalesced call. */
export function splitOutcome(
  outcome: UpstreamOutcome,
  count: number,
  itemStatusField: string,
): UpstreamOutcome[] {
  if (outcome.kind === 'error' || outcome.status < 200 || outcome.status >= 300) {
    return Array.from({ length: count }, () => outcome);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(outcome.body.toString('utf8'));
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed) || parsed.length !== count) {
    const mismatch: UpstreamOutcome = {
      kind: 'error',
      code: 'UPSTREAM_BATCH_MISMATCH',
      message: `expected a JSON array of ${count} results, got ${Array.isArray(parsed) ? `${parsed.length} results` : 'something else'}`,
      durationMs: outcome.durationMs,
    };
    return Array.from({ length: count }, () => mismatch);
  }
  return parsed.map((element: unknown) => {
    const status = (element as Record<string, unknown> | null)?.[itemStatusField];
    return {
      kind: 'response',
      status: typeof status === 'number' && status >= 400 && status <= 599 ? status : 200,
      headers: { 'content-type': 'application/json' },
      body: Buffer.from(JSON.stringify(element)),
      durationMs: outcome.durationMs,
    };
  });
}

function jsonElement(body: Buffer | undefined): string {
  if (body === undefined || body.length === 0) return 'null';
  const text = body.toString('utf8');
  try {
    JSON.parse(text);
    return text;
  } catch {
    return JSON.stringify(text);
  }
}
