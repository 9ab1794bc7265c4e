import { type Dispatcher, H2CClient, Pool } from 'undici';
import { tryDeadline } from './deadline.ts';
import { forwardableHeaders, hopByHopHeaders } from './headers.ts';
import { type UpstreamErrorCode, type UpstreamOutcome, upstreamErrorCodes } from './outcome.ts';

export interface UpstreamCall {
  /** Which upstream (route) the call belongs to: connection pools and their bounds are per upstream and origin. */
  upstream: string;
  url: URL;
  method: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** One try's limit, connect to last byte. */
  timeoutMs: number;
  /** Larger answers end the try as UPSTREAM_RESPONSE_TOO_LARGE instead of filling memory. */
  maxResponseBytes: number;
  /** Sent as Idempotency-Key, so that upstreams that support it drop repeats of the same request. */
  idempotencyKey: string;
  signal?: AbortSignal;
}

export interface UpstreamClientOptions {
  /** Connections toward one target of an upstream: the bound of its concurrent requests from this process. */
  connections(upstream: string): number;
  /** HTTP/2 upstreams: ALPN over TLS for https targets, prior knowledge (h2c) for http ones. Default http1. */
  protocol?(upstream: string): 'http1' | 'http2';
  keepAliveTimeoutMs?: number;
}

/**
 * Calls upstreams over pooled keep-alive connections (one undici Pool per origin). Every failure becomes an
 * outcome with a code; nothing throws, because a failed upstream call is a normal event for a gateway.
 */
export class UpstreamClient {
  readonly #options: UpstreamClientOptions;
  readonly #pools = new Map<string, Dispatcher>();

  constructor(options: UpstreamClientOptions) {
    this.#options = options;
  }

  #pool(upstream: string, origin: string): Dispatcher {
    const key = `${upstream} ${origin}`;
    let pool = this.#pools.get(key);
    if (pool === undefined) {
      const connections = this.#options.connections(upstream);
      const keepAliveTimeout = this.#options.keepAliveTimeoutMs ?? 30_000;
      const http2 = this.#options.protocol?.(upstream) === 'http2';
      if (http2 && origin.startsWith('http:')) {
        // One connection multiplexes the streams; the bound of concurrent requests becomes the stream limit.
        pool = new H2CClient(origin, { pipelining: connections, keepAliveTimeout });
      } else {
        pool = new Pool(origin, { connections, keepAliveTimeout, pipelining: 1, allowH2: http2 });
      }
      this.#pools.set(key, pool);
    }
    return pool;
  }

  async call(call: UpstreamCall): Promise<UpstreamOutcome> {
    const started = performance.now();
    const elapsed = () => Math.round((performance.now() - started) * 10) / 10;
    const deadline = tryDeadline(call.timeoutMs);
    const signal = call.signal ? AbortSignal.any([call.signal, deadline.signal]) : deadline.signal;
    try {
      const response = await this.#pool(call.upstream, call.url.origin).request({
        path: `${call.url.pathname}${call.url.search}`,
        method: call.method as 'GET',
        headers: {
          ...forwardableHeaders(call.headers),
          'idempotency-key': call.idempotencyKey,
        },
        ...(call.body !== undefined && call.body.length > 0 ? { body: call.body } : {}),
        // The deadline below is the try's only clock: undici's own timers would fire from the same stalled
        // timers phase and discard an answer that is already waiting on the socket.
        headersTimeout: 0,
        bodyTimeout: 0,
        signal,
      });
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of response.body) {
        size += (chunk as Buffer).length;
        if (size > call.maxResponseBytes) {
          response.body.destroy();
          return failure(
            upstreamErrorCodes.responseTooLarge,
            `response body exceeds ${call.maxResponseBytes} bytes`,
            elapsed(),
          );
        }
        chunks.push(chunk as Buffer);
      }
      return {
        kind: 'response',
        status: response.statusCode,
        headers: responseHeaders(response.headers),
        body: Buffer.concat(chunks),
        durationMs: elapsed(),
      };
    } catch (error) {
      if (deadline.signal.aborted)
        return failure(upstreamErrorCodes.timeout, `no answer within ${call.timeoutMs} ms`, elapsed());
      if (call.signal?.aborted) return failure(upstreamErrorCodes.aborted, 'the try was aborted', elapsed());
      const [code, message] = classifyError(error);
      return failure(code, message, elapsed());
    } finally {
      deadline.clear();
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.#pools.values()].map((pool) => pool.close()));
    this.#pools.clear();
  }
}

function failure(code: UpstreamErrorCode, message: string, durationMs: number): UpstreamOutcome {
  return { kind: 'error', code, message, durationMs };
}

function classifyError(error: unknown): [UpstreamErrorCode, string] {
  const code = (error as { code?: string }).code ?? '';
  const message = (error as Error).message ?? String(error);
  switch (code) {
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return [upstreamErrorCodes.connect, `${code}: ${message}`];
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
    case 'ETIMEDOUT':
      return [upstreamErrorCodes.timeout, `${code}: ${message}`];
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_CLOSED':
      return [upstreamErrorCodes.reset, `${code}: ${message}`];
    case 'UND_ERR_INVALID_ARG':
    case 'ERR_INVALID_ARG_TYPE':
    case 'ERR_INVALID_HTTP_TOKEN':
    case 'ERR_INVALID_CHAR':
      return [upstreamErrorCodes.invalidRequest, `${code}: ${message}`];
    default:
      // An unknown network failure is treated as a reset: trying again is the safe default for a queue.
      return [upstreamErrorCodes.reset, `${code || 'error'}: ${message}`];
  }
}

function responseHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || hopByHopHeaders.has(name)) continue;
    result[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return result;
}
