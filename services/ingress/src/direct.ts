import { Agent as HttpAgent, type IncomingMessage, type ServerResponse } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { RouteConfig } from '@sluice/gateway-config';
import { hopByHopHeaders, reportOf, type Target, UpstreamState } from '@sluice/upstream';
import type { NextFunction, Request, Response } from 'express';
import { createProxyMiddleware, type RequestHandler } from 'http-proxy-middleware';
import { checkPath } from './plan.ts';
import { HttpProblem, sendProblem } from './problems.ts';

interface DirectRoute {
  version: string;
  state: UpstreamState;
  proxy: RequestHandler<IncomingMessage, ServerResponse>;
  agents: Array<HttpAgent | HttpsAgent>;
}

export interface DirectProxyOptions {
  locality?: { region?: string | undefined; zone?: string | undefined };
  now?: () => number;
}

const tryHeader = 'x-sluice-direct-target';

/**
 * Routes with `mode: direct` are proxied straight through by the ingress (http-proxy-middleware), with no queue:
 * the same target selection and health state as the batch-workers (balancer, outlier detection, circuit
 * breakers, rate limits), a keep-alive agent per route (pooling per target), hop-by-hop headers removed (RFC
 * 9110 §7.6.1), Forwarded and X-Forwarded-* set, bodies streamed both ways and never buffered whole, the body size
 * and the route's timeout enforced, and upstream failures answered as 502/504 problem documents. Without a queue
 * there is nothing to wait in: a full or failing upstream answers 429/503 with Retry-After at once.
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
    const [path = ''] = req.originalUrl.split('?');
    try {
      checkPath(path.slice(`/r/${name}`.length) || '/');
    } catch (error) {
      next(error);
      return;
    }
    const declared = Number(req.headers['content-length'] ?? '0');
    if (declared > maxBodyBytes) {
      next(new HttpProblem('too-large', { detail: `the body exceeds ${maxBodyBytes} bytes` }));
      return;
    }
    const now = this.#now();
    const admission = direct.state.admit({ hashKey: req.path, isRetry: false }, now);
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
    const release = (report: Parameters<UpstreamState['release']>[2]) => {
      if (released) return;
      released = true;
      direct.state.release(target, false, report, this.#now());
    };
    res.locals.maxBodyBytes = maxBodyBytes;
    res.once('close', () => release({ healthFailure: false, throttled: false }));
    res.locals.releaseDirect = release;
    req.headers[tryHeader] = target.url;
    void direct.proxy(req, res, (error?: unknown) => {
      release({ healthFailure: true, throttled: false });
      next(error);
    });
  }

  #route(name: string, route: RouteConfig): DirectRoute {
    const version = JSON.stringify(route);
    const existing = this.#routes.get(name);
    if (existing !== undefined && existing.version === version) return existing;
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
    for (const agent of existing?.agents ?? []) agent.destroy();
    // One keep-alive agent per route; it pools connections per target (host and port) up to the concurrency.
    const secure = settings.targets.every((target) => target.url.startsWith('https:'));
    const agents = [
      secure
        ? new HttpsAgent({ keepAlive: true, maxSockets: route.concurrency })
        : new HttpAgent({ keepAlive: true, maxSockets: route.concurrency }),
    ];
    const prefix = `/r/${name}`;
    const now = this.#now;
    const owner = state;
    const proxy = createProxyMiddleware<IncomingMessage, ServerResponse>({
      router: (req) => String(req.headers[tryHeader]),
      pathRewrite: (path) => path.slice(prefix.length) || '/',
      changeOrigin: true,
      xfwd: true,
      // The route's limit on the upstream's answer; the client's own connection is not cut.
      proxyTimeout: route.timeoutMs,
      agent: agents[0],
      on: {
        proxyReq: (proxyReq, req, res) => {
          countBody(req, res, proxyReq);
          for (const name of proxyReq.getHeaderNames()) {
            if (removedTowardUpstream(name, req.headers.connection)) proxyReq.removeHeader(name);
          }
          const client = req.socket.remoteAddress ?? 'unknown';
          const forwarded = `for=${forwardedNode(client)};proto=${(req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http'};host="${req.headers.host ?? ''}"`;
          proxyReq.setHeader(
            'forwarded',
            req.headers.forwarded ? `${req.headers.forwarded}, ${forwarded}` : forwarded,
          );
        },
        proxyRes: (proxyRes, _req, res) => {
          const connection = proxyRes.headers.connection;
          for (const name of Object.keys(proxyRes.headers)) {
            // Transfer-Encoding stays: Node frames the body toward the client from it.
            if (name === 'transfer-encoding') continue;
            if (hopByHopHeaders.has(name) || connectionNamed(name, connection)) delete proxyRes.headers[name];
          }
          const release = (res as ServerResponse & { locals?: Record<string, unknown> }).locals
            ?.releaseDirect as ((report: ReturnType<typeof reportOf>) => void) | undefined;
          const status = proxyRes.statusCode ?? 502;
          const retryAfter = proxyRes.headers['retry-after'];
          release?.(
            reportOf(
              {
                kind: 'response',
                status,
                headers: typeof retryAfter === 'string' ? { 'retry-after': retryAfter } : {},
                body: Buffer.alloc(0),
                durationMs: 0,
              },
              now(),
            ),
          );
        },
        error: (error, _req, res) => {
          const code = (error as { code?: string }).code ?? '';
          const timedOut =
            code === 'ECONNRESET' || code === 'ETIMEDOUT' || /timeout/i.test((error as Error).message);
          const response = res as ServerResponse & { locals?: Record<string, unknown> };
          const release = response.locals?.releaseDirect as
            | ((report: ReturnType<typeof reportOf>) => void)
            | undefined;
          release?.({ healthFailure: true, throttled: false });
          if (!('writeHead' in res) || res.headersSent) {
            if ('destroy' in res) res.destroy();
            return;
          }
          sendProblem(res as Response, timedOut ? 'gateway-timeout' : 'bad-gateway', {
            detail: `the upstream ${timedOut ? 'did not answer in time' : `failed: ${code || (error as Error).message}`}`,
          });
        },
      },
    });
    const created: DirectRoute = { version, state: owner, proxy, agents };
    this.#routes.set(name, created);
    return created;
  }

  close(): void {
    for (const route of this.#routes.values()) for (const agent of route.agents) agent.destroy();
  }

  /** The upstream state of a direct route (for metrics and tests). */
  state(name: string): UpstreamState | undefined {
    return this.#routes.get(name)?.state;
  }
}

export type { Target };

/**
 * Bodies are streamed, so their size limit is counted on the way through. The counter is attached when the
 * proxy starts piping (a 'data' listener attached earlier would start the flow before anyone reads it).
 */
function countBody(req: IncomingMessage, res: ServerResponse, proxyReq: { destroy(): void }): void {
  const locals = (res as ServerResponse & { locals?: Record<string, unknown> }).locals ?? {};
  const limit = Number(locals.maxBodyBytes ?? Number.POSITIVE_INFINITY);
  let received = 0;
  req.on('data', (chunk: Buffer) => {
    received += chunk.length;
    if (received <= limit) return;
    proxyReq.destroy();
    req.unpipe();
    if (!res.headersSent)
      sendProblem(res as Response, 'too-large', { detail: `the body exceeds ${limit} bytes` });
    req.destroy();
  });
}

/** Headers a client's request must not carry to the upstream: hop-by-hop, Sluice's own, and the Sluice key. */
function removedTowardUpstream(name: string, connection: string | undefined): boolean {
  const lower = name.toLowerCase();
  if (lower === 'authorization' || lower.startsWith('sluice-') || lower === tryHeader) return true;
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
