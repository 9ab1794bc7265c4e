import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import type { RouteConfig } from '@sluice/gateway-config';
import { hopByHopHeaders, reportOf, type Target, type TryReport, UpstreamState } from '@sluice/upstream';
import type { NextFunction, Request, Response } from 'express';
import { type Dispatcher, Pool, errors as undiciErrors } from 'undici';
import { checkPath } from './plan.ts';
import { HttpProblem, sendProblem } from './problems.ts';

interface Endpoint {
  origin: string;
  host: string;
  /** The target's base path (`/base` of `http://host/base/`): request paths are appended below it. */
  basePath: string;
  /** Keep-alive connections to the target, up to the route's concurrency. */
  pool: Dispatcher;
}

interface DirectRoute {
  /** The route's configuration object this state was built from: a reload makes a new one. */
  config: RouteConfig;
  state: UpstreamState;
  endpoint(targetUrl: string): Endpoint;
  close(): Promise<void>;
}

export interface DirectProxyOptions {
  locality?: { region?: string | undefined; zone?: string | undefined };
  now?: () => number;
}

/** A streamed request body grew past the limit: the try ends, and the client is answered 413. */
class BodyTooLarge extends Error {
  constructor(limit: number) {
    super(`the body exceeds ${limit} bytes`);
    this.name = 'BodyTooLarge';
  }
}

/**
 * Routes with `mode: direct` are proxied straight through by the ingress, with no queue: the same target
 * selection and health state as the batch-workers (balancer, outlier detection, circuit breakers, rate limits),
 * keep-alive undici pools per target, hop-by-hop headers removed (RFC 9110 §7.6.1), Forwarded and X-Forwarded-*
 * set, bodies streamed both ways and never buffered whole, the body size and the route's timeout enforced, and
 * upstream failures answered as 502/504 problem documents. Without a queue there is nothing to wait in: a full or
 * failing upstream answers 429/503 with Retry-After at once. Why undici and not http-proxy-middleware:
 * docs/adr/0002-direct-proxy.md.
 */
export class DirectProxy {
  readonly #routes = new Map<string, DirectRoute>();
  readonly #options: DirectProxyOptions;
  readonly #now: () => number;

  constructor(options: DirectProxyOptions = {}) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** Proxies one request on a direct route; the caller has authenticated the tenant and checked the route. */
  handle(
    req: Request,
    res: Response,
    next: NextFunction,
    name: string,
    route: RouteConfig,
    maxBodyBytes: number,
  ): void {
    const direct = this.#route(name, route);
    // The same path rules as a queued route's: no "..", "." or encoded slashes that could climb out of the
    // route's base path on an upstream that normalises paths.
    const url = req.originalUrl;
    const queryAt = url.indexOf('?');
    const path = (queryAt === -1 ? url : url.slice(0, queryAt)).slice(`/r/${name}`.length) || '/';
    try {
      checkPath(path);
    } catch (error) {
      next(error);
      return;
    }
    const declared = Number(req.headers['content-length'] ?? '0');
    if (declared > maxBodyBytes) {
      next(new HttpProblem('too-large', { detail: `the body exceeds ${maxBodyBytes} bytes` }));
      return;
    }
    const admission = direct.state.admit({ hashKey: req.path, isRetry: false }, this.#now());
    if (admission.kind === 'wait') {
      const seconds = String(Math.max(1, Math.ceil((admission.waitMs ?? 1_000) / 1000)));
      const rateLimited = admission.reason === 'rate' || admission.reason === 'target-rate';
      next(
        new HttpProblem(rateLimited ? 'upstream-rate-limited' : 'upstream-unavailable', {
          detail: `the upstream has no room now (${admission.reason})`,
          headers: { 'retry-after': seconds },
        }),
      );
      return;
    }
    const target = admission.target;
    let released = false;
    const release = (report: TryReport) => {
      if (released) return;
      released = true;
      direct.state.release(target, false, report, this.#now());
    };
    // A client that goes away ends the upstream try too; a finished answer releases the slot as it was reported.
    const abort = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) abort.abort();
      release({ healthFailure: false, throttled: false });
    });
    void this.#forward(req, res, direct, target, route, {
      path: `${direct.endpoint(target.url).basePath}${path}${queryAt === -1 ? '' : url.slice(queryAt)}`,
      maxBodyBytes,
      signal: abort.signal,
      release,
    });
  }

  async #forward(
    req: IncomingMessage,
    res: Response,
    direct: DirectRoute,
    target: Target,
    route: RouteConfig,
    call: { path: string; maxBodyBytes: number; signal: AbortSignal; release(report: TryReport): void },
  ): Promise<void> {
    const { host, pool } = direct.endpoint(target.url);
    const hasBody =
      req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    try {
      const answer = await pool.request({
        path: call.path,
        method: req.method as Dispatcher.HttpMethod,
        headers: towardUpstream(req, host),
        ...(hasBody ? { body: Readable.from(counted(req, call.maxBodyBytes), { objectMode: false }) } : {}),
        // The route's limit on the upstream's answer: until its headers, and between chunks of its body (a long
        // download that keeps flowing is not cut). The client's own connection has no such limit.
        headersTimeout: route.timeoutMs,
        bodyTimeout: route.timeoutMs,
        signal: call.signal,
      });
      const retryAfter = answer.headers['retry-after'];
      call.release(
        reportOf(
          {
            kind: 'response',
            status: answer.statusCode,
            headers: typeof retryAfter === 'string' ? { 'retry-after': retryAfter } : {},
            body: Buffer.alloc(0),
            durationMs: 0,
          },
          this.#now(),
        ),
      );
      res.writeHead(answer.statusCode, towardClient(answer.headers));
      // pipe, not stream.pipeline: pipeline builds and aborts an AbortController per call (a DOMException each
      // time, 4% of the CPU of a proxied request). A client that goes away aborts the try (see handle), which
      // ends the upstream body; an upstream body that fails mid-way cuts the client's answer.
      answer.body.once('error', () => res.destroy());
      answer.body.pipe(res);
    } catch (error) {
      this.#failed(error, res, call);
    }
  }

  #failed(
    error: unknown,
    res: Response,
    call: { signal: AbortSignal; release(report: TryReport): void },
  ): void {
    if (call.signal.aborted) return; // the client went away: nobody to answer
    const tooLarge = error instanceof BodyTooLarge ? error : (error as { cause?: unknown }).cause;
    if (tooLarge instanceof BodyTooLarge) {
      call.release({ healthFailure: false, throttled: false });
      if (!res.headersSent) {
        sendProblem(res, 'too-large', { detail: tooLarge.message, headers: { connection: 'close' } });
      } else res.destroy();
      return;
    }
    call.release({ healthFailure: true, throttled: false });
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const timedOut =
      error instanceof undiciErrors.HeadersTimeoutError || error instanceof undiciErrors.BodyTimeoutError;
    const code = (error as { code?: string }).code ?? '';
    sendProblem(res, timedOut ? 'gateway-timeout' : 'bad-gateway', {
      detail: `the upstream ${timedOut ? 'did not answer in time' : `failed: ${code || (error as Error).message}`}`,
    });
  }

  #route(name: string, route: RouteConfig): DirectRoute {
    const existing = this.#routes.get(name);
    // Configuration objects are replaced, never changed, on a reload: the same object is the same route.
    if (existing !== undefined && existing.config === route) return existing;
    if (existing !== undefined && JSON.stringify(existing.config) === JSON.stringify(route)) {
      existing.config = route;
      return existing;
    }
    const settings = route.upstream;
    let state = existing?.state;
    if (state === undefined) {
      state = new UpstreamState(settings, {
        locality: settings.locality ? this.#options.locality : undefined,
        concurrencyPerTarget: route.concurrency,
      });
    } else {
      state.reconfigure(settings);
    }
    void existing?.close();
    const endpoints = new Map<string, Endpoint>();
    const created: DirectRoute = {
      config: route,
      state,
      endpoint(targetUrl) {
        let endpoint = endpoints.get(targetUrl);
        if (endpoint === undefined) {
          const url = new URL(targetUrl);
          endpoint = {
            origin: url.origin,
            host: url.host,
            basePath: url.pathname.replace(/\/+$/, ''),
            pool: new Pool(url.origin, {
              connections: route.concurrency,
              keepAliveTimeout: 30_000,
              pipelining: 1,
            }),
          };
          endpoints.set(targetUrl, endpoint);
        }
        return endpoint;
      },
      async close() {
        await Promise.all([...endpoints.values()].map((endpoint) => endpoint.pool.destroy()));
      },
    };
    this.#routes.set(name, created);
    return created;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#routes.values()].map((route) => route.close()));
  }

  /** The upstream state of a direct route (for metrics and tests). */
  state(name: string): UpstreamState | undefined {
    return this.#routes.get(name)?.state;
  }
}

export type { Target };

/** The client's body as it streams, ended with BodyTooLarge once it passes the limit. */
async function* counted(req: IncomingMessage, limit: number): AsyncGenerator<Buffer> {
  let received = 0;
  for await (const chunk of req) {
    received += (chunk as Buffer).length;
    if (received > limit) throw new BodyTooLarge(limit);
    yield chunk as Buffer;
  }
}

/**
 * Set by the proxy itself toward the upstream: Host names the target, the body is framed anew (chunked unless
 * the client declared a Content-Length), and Expect was answered by this server already.
 */
const framedByUs: ReadonlySet<string> = new Set(['host', 'transfer-encoding', 'expect']);

/** The request's headers as the upstream gets them: without hop-by-hop ones or Sluice's, with forwarding ones. */
function towardUpstream(req: IncomingMessage, upstreamHost: string): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = {};
  const connection = req.headers.connection;
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || framedByUs.has(name) || removedTowardUpstream(name, connection)) continue;
    headers[name] = value;
  }
  const client = req.socket.remoteAddress ?? 'unknown';
  const proto = (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
  const host = req.headers.host ?? '';
  const forwarded = `for=${forwardedNode(client)};proto=${proto};host="${host}"`;
  headers.forwarded = req.headers.forwarded ? `${req.headers.forwarded}, ${forwarded}` : forwarded;
  const xff = req.headers['x-forwarded-for'];
  headers['x-forwarded-for'] = xff
    ? `${xff}, ${client.replace(/^::ffff:/, '')}`
    : client.replace(/^::ffff:/, '');
  headers['x-forwarded-proto'] = proto;
  headers['x-forwarded-host'] = host;
  headers.host = upstreamHost;
  return headers;
}

/** The upstream's answer headers as the client gets them: hop-by-hop ones and those Connection names removed. */
function towardClient(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const kept: Record<string, string | string[]> = {};
  const connection = headers.connection;
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || hopByHopHeaders.has(name) || connectionNamed(name, connection)) continue;
    kept[name] = value;
  }
  return kept;
}

/** Headers a client's request must not carry to the upstream: hop-by-hop, Sluice's own, and the Sluice key. */
function removedTowardUpstream(name: string, connection: string | undefined): boolean {
  const lower = name.toLowerCase();
  if (lower === 'authorization' || lower.startsWith('sluice-')) return true;
  if (
    lower === 'connection' ||
    lower === 'keep-alive' ||
    lower === 'proxy-connection' ||
    lower === 'te' ||
    lower === 'trailer' ||
    lower === 'upgrade'
  )
    return true;
  if (lower === 'proxy-authorization' || lower === 'proxy-authenticate') return true;
  return connectionNamed(lower, connection);
}

function connectionNamed(name: string, connection: string | string[] | undefined): boolean {
  const value = Array.isArray(connection) ? connection.join(',') : (connection ?? '');
  return value
    .split(',')
    .map((token) => token.trim().toLowerCase())
    .filter((token) => token !== '' && token !== 'close' && token !== 'keep-alive')
    .includes(name);
}

/** An address as a Forwarded node (RFC 7239): IPv6 in brackets and quoted. */
function forwardedNode(address: string): string {
  const plain = address.replace(/^::ffff:/, '');
  return plain.includes(':') ? `"[${plain}]"` : plain;
}
