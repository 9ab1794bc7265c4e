import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export interface ReadinessCheck {
  name: string;
  /** True when this dependency is ready; never throws. */
  ready(): boolean;
}

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, boolean>;
  /** Facts an operator compares across replicas, such as the version of the configuration each one runs. */
  info: Record<string, string>;
}

/**
 * Readiness of a service: every check passes and the service is not shutting down. Once shutdown starts,
 * readiness stays false so that load balancers drain the instance.
 */
export class Readiness {
  readonly #checks: ReadinessCheck[] = [];
  readonly #info = new Map<string, () => string>();
  #shuttingDown = false;

  add(check: ReadinessCheck): this {
    this.#checks.push(check);
    return this;
  }

  info(name: string, value: () => string): this {
    this.#info.set(name, value);
    return this;
  }

  markShuttingDown(): void {
    this.#shuttingDown = true;
  }

  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  report(): ReadinessReport {
    const checks: Record<string, boolean> = {};
    for (const check of this.#checks) checks[check.name] = check.ready();
    checks.notShuttingDown = !this.#shuttingDown;
    const info = Object.fromEntries([...this.#info].map(([name, value]) => [name, value()]));
    return { ready: Object.values(checks).every(Boolean), checks, info };
  }
}

export type ExtraRoute = (req: IncomingMessage, res: ServerResponse) => boolean;

/**
 * The operational HTTP endpoints of a service without a public API: `/healthz` (the process is alive) and
 * `/readyz` (dependencies ready, not shutting down). Extra routes (e.g. `/metrics`) can be added by the caller.
 */
export function createHealthServer(readiness: Readiness, extraRoutes: ExtraRoute[] = []): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/healthz') return sendJson(res, 200, { status: 'ok' });
    if (req.method === 'GET' && path === '/readyz') {
      const report = readiness.report();
      return sendJson(res, report.ready ? 200 : 503, {
        status: report.ready ? 'ready' : 'not ready',
        ...report,
      });
    }
    for (const route of extraRoutes) if (route(req, res)) return;
    sendJson(res, 404, { type: 'about:blank', title: 'Not Found', status: 404 }, 'application/problem+json');
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}
