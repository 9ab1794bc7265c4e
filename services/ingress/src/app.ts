import { type Tracer, trace } from '@opentelemetry/api';
import { isTerminal, type StatusMessage } from '@sluice/contracts';
import { routeNamed } from '@sluice/gateway-config';
import type { Readiness } from '@sluice/runtime';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import type { Admission } from './admission.ts';
import { keyIdOf, type Principal, requireScope, tenantOf } from './auth.ts';
import { batchEvents } from './batch-events.ts';
import type { DirectProxy } from './direct.ts';
import type { Enqueuer } from './enqueue.ts';
import type { ActiveGateway } from './gateway.ts';
import { batchDocument, type Lookups, statusDocument } from './lookups.ts';
import { type IngressMetrics, routeTemplate, type SubmissionNote } from './metrics.ts';
import { documentedMethods, openApiDocument } from './openapi.ts';
import { routeFor } from './plan.ts';
import { preferredWaitSeconds } from './prefer.ts';
import { HttpProblem, problemHandler, sendProblem } from './problems.ts';
import { pollAfterSeconds, type QueueEstimate } from './queue-stats.ts';
import { type Redriver, redriveBy } from './redrive.ts';
import { submitBatch, submitRequest } from './submit.ts';
import { serverSpans } from './tracing.ts';
import { transparentRequest } from './transparent.ts';

export interface AppDeps {
  readiness: Readiness;
  admission: Admission;
  redriver: Redriver;
  gateway(): ActiveGateway;
  enqueuer: Enqueuer;
  lookups: Lookups;
  queue: { current(): QueueEstimate };
  /** Aborted when shutdown starts: held waits answer with what they have, event streams end. */
  shutdownSignal: AbortSignal;
  metrics: IngressMetrics;
  tracer: Tracer;
  direct: DirectProxy;
  /** Answers a Prometheus scrape. */
  metricsHandler(req: Request, res: Response): void;
  onUnexpectedError(error: unknown): void;
  /** The access log: one line for every `sampleEvery` requests (high volume), every 5xx always. */
  accessLog?: { write(line: Record<string, unknown>): void; sampleEvery: number } | undefined;
  now?: () => number;
}

/** Builds the ingress HTTP app; it never listens, so tests drive it without ports. */
export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'extended');
  app.set('etag', false);

  app.use(serverSpans(deps.tracer));
  if (deps.accessLog !== undefined) app.use(accessLog(deps.accessLog));
  app.use(deps.metrics.middleware());
  app.get('/metrics', (req, res) => deps.metricsHandler(req, res));
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', (_req, res) => {
    const report = deps.readiness.report();
    res
      .status(report.ready ? 200 : 503)
      .set('cache-control', 'no-store')
      .json({
        status: report.ready ? 'ready' : 'not ready',
        ...report,
        configVersion: deps.gateway().version,
      });
  });
  app.get('/openapi.json', (_req, res) => {
    res.json(openApiDocument());
  });

  app.use(headerLimits(deps));
  const tenantOnly = requireScope(() => deps.gateway().authenticator, 'tenant');
  const json = jsonBody(deps, (config) => Math.ceil(config.limits.maxBodyBytes * 1.4) + 64 * 1024);
  const batchJson = jsonBody(deps, (config) => config.limits.maxBatchBytes);

  app.post('/v1/requests', tenantOnly, json, async (req, res) => {
    const wait = waitSeconds(req, deps);
    const outcome = await submitRequest(req.body, {
      tenant: tenantOf(res),
      config: deps.gateway().config,
      headerIdempotencyKey: req.get('idempotency-key'),
      enqueuer: deps.enqueuer,
      admit: admitInto(res, deps, wait !== undefined && wait > 0),
      now: (deps.now ?? Date.now)(),
    });
    noteSubmission(res, req.body, 1);
    await answerRequest(req, res, deps, outcome.id, wait, outcome.replayed);
  });

  app.get('/v1/requests/:id', tenantOnly, async (req, res) => {
    const wait = waitSeconds(req, deps);
    const found = await deps.lookups.status(tenantOf(res), String(req.params.id));
    if (found === undefined) throw new HttpProblem('not-found', { detail: 'no such request' });
    const status = wait === undefined ? found : await holdFor(req, deps, found, wait);
    if (wait !== undefined) res.set('preference-applied', `wait=${wait}`);
    res.set('cache-control', 'no-store').json(statusDocument(status));
  });

  app.post('/v1/batches', tenantOnly, batchJson, async (req, res) => {
    const tenant = tenantOf(res);
    const outcome = await submitBatch(req.body, {
      tenant,
      config: deps.gateway().config,
      headerIdempotencyKey: req.get('idempotency-key'),
      enqueuer: deps.enqueuer,
      admit: admitInto(res, deps),
      lookups: deps.lookups,
      now: (deps.now ?? Date.now)(),
    });
    noteSubmission(res, req.body?.requests?.[0], outcome.ids.length);
    const statusUrl = `/v1/batches/${outcome.batchId}`;
    if (outcome.replayed) res.set('idempotent-replayed', 'true');
    res.status(202).location(statusUrl).json({ batchId: outcome.batchId, ids: outcome.ids, statusUrl });
  });

  app.get('/v1/batches/:id', tenantOnly, async (req, res) => {
    const batchId = String(req.params.id);
    const statuses = await deps.lookups.batch(tenantOf(res), batchId);
    if (statuses === undefined) throw new HttpProblem('not-found', { detail: 'no such batch' });
    res.set('cache-control', 'no-store').json(batchDocument(batchId, statuses));
  });

  const streams = new Map<string, number>();
  app.get('/v1/batches/:id/events', tenantOnly, async (req, res) => {
    const batchId = String(req.params.id);
    const tenant = tenantOf(res);
    const statuses = await deps.lookups.batch(tenant, batchId);
    if (statuses === undefined) throw new HttpProblem('not-found', { detail: 'no such batch' });
    const config = deps.gateway().config;
    const maxStreams = config.tenants[tenant]?.maxEventStreams ?? config.limits.maxEventStreamsPerTenant;
    const open = streams.get(tenant) ?? 0;
    if (open >= maxStreams) {
      throw new HttpProblem('too-many-streams', {
        detail: `this tenant has ${open} event streams open, the most allowed; close one or poll the batch`,
        headers: { 'retry-after': '5' },
      });
    }
    streams.set(tenant, open + 1);
    res.once('close', () => {
      const left = (streams.get(tenant) ?? 1) - 1;
      if (left === 0) streams.delete(tenant);
      else streams.set(tenant, left);
    });
    batchEvents(req, res, {
      batchId,
      tenant: tenantOf(res),
      initial: statuses,
      lookups: deps.lookups,
      shutdownSignal: deps.shutdownSignal,
    });
  });

  const adminOnly = requireScope(() => deps.gateway().authenticator, 'admin');
  app.post('/v1/requests/:id/redrive', adminOnly, async (req, res) => {
    const id = String(req.params.id);
    const found = await deps.redriver.find({ ids: [id], limit: 1 });
    if (found.length === 0) {
      throw new HttpProblem('not-found', { detail: 'no dead letter holds a request with this id' });
    }
    const outcome = await deps.redriver.redrive(found, keyIdOf(res));
    const redriven = outcome.redriven[0];
    if (redriven === undefined) {
      const skip = outcome.skipped[0];
      throw new HttpProblem('not-redrivable', {
        detail:
          skip?.reason === 'not-dead'
            ? `the request is ${skip.status} now; only a dead request can be redriven`
            : `the request was not redriven: ${skip?.reason}`,
        extensions: { reason: skip?.reason, ...(skip?.status ? { requestStatus: skip.status } : {}) },
      });
    }
    const statusUrl = `/v1/requests/${id}`;
    res
      .status(202)
      .location(statusUrl)
      .json({ ...redriven, statusUrl });
  });

  app.post('/v1/redrives', adminOnly, json, async (req, res) => {
    const outcome = await redriveBy(deps.redriver, req.body, keyIdOf(res));
    res.status(outcome.dryRun ? 200 : 202).json(outcome);
  });

  // Direct routes are proxied as they stream; queued routes read the whole (bounded) body first.
  app.all('/r/:route{/*path}', tenantOnly, (req, res, next) => {
    const name = String(req.params.route);
    const config = deps.gateway().config;
    const route = routeNamed(config, name);
    if (route?.mode !== 'direct') {
      next();
      return;
    }
    try {
      routeFor(config, tenantOf(res), name);
    } catch (error) {
      next(error);
      return;
    }
    if (!(route.methods as readonly string[]).includes(req.method)) {
      next(new HttpProblem('method-not-allowed', { headers: { allow: route.methods.join(', ') } }));
      return;
    }
    deps.admission.admit(config, tenantOf(res), 1, { queued: false }).then(
      (headers) => {
        res.set(headers);
        deps.direct.handle(req, res, next, name, route, route.maxBodyBytes ?? config.limits.maxBodyBytes);
      },
      (error: unknown) => next(error),
    );
  });
  app.all('/r/:route{/*path}', rawBody(deps), async (req, res) => {
    const wait = waitSeconds(req, deps);
    const outcome = await transparentRequest(req, {
      tenant: tenantOf(res),
      route: String(req.params.route),
      config: deps.gateway().config,
      enqueuer: deps.enqueuer,
      admit: admitInto(res, deps, wait !== undefined && wait > 0),
      now: (deps.now ?? Date.now)(),
    });
    res.locals.submission = { route: String(req.params.route), accepted: 1 } satisfies SubmissionNote;
    res.set('sluice-request-id', outcome.id);
    if (wait !== undefined && wait > 0) {
      const found = await deps.lookups.status(tenantOf(res), outcome.id).catch(() => undefined);
      const status = found === undefined ? undefined : await holdFor(req, deps, found, wait);
      if (status !== undefined && isTerminal(status.status)) {
        res.set('preference-applied', `wait=${wait}`);
        answerWithUpstreamResult(res, status);
        return;
      }
    }
    await answerRequest(req, res, deps, outcome.id, undefined, outcome.replayed);
  });

  // A documented path asked with a method it does not have: 405 naming those it has (RFC 9110), not 404.
  for (const { path, methods } of documentedMethods()) {
    app.all(path, (req, res) => {
      const allow = methods.join(', ');
      sendProblem(res, 'method-not-allowed', {
        detail: `${req.method} is not one of ${allow}`,
        headers: { allow },
      });
    });
  }
  app.use((req, res) => {
    sendProblem(res, 'not-found', { detail: `no endpoint ${req.method} ${req.path}` });
  });
  app.use(problemHandler(deps.onUnexpectedError));
  return app;
}

/**
 * Admits a submission of `cost` requests for the answer's tenant, setting the rate-limit headers it gets; `holds`
 * when its client waits for the result.
 */
function admitInto(res: Response, deps: AppDeps, holds = false): (cost: number) => Promise<void> {
  return async (cost) => {
    res.set(await deps.admission.admit(deps.gateway().config, tenantOf(res), cost, { holds }));
  };
}

/** 202 with the queue estimate, or 200 with the status when it is terminal (after an optional wait). */
async function answerRequest(
  req: Request,
  res: Response,
  deps: AppDeps,
  id: string,
  wait: number | undefined,
  replayed: boolean,
): Promise<void> {
  const tenant = tenantOf(res);
  res.set('sluice-request-id', id);
  trace.getActiveSpan()?.setAttribute('sluice.request_id', id);
  if (replayed) res.set('idempotent-replayed', 'true');
  // A new submission without Prefer: wait is answered 202 as it is, as the API document says: looking its status up
  // would cost a store read per request and, on a fast path, answer 200 with a result nobody waited for. A replay
  // and a held request need the status. The request is on Kafka already: a store that cannot answer now must not
  // turn the 202 into an error.
  let status =
    replayed || wait !== undefined ? await deps.lookups.status(tenant, id).catch(() => undefined) : undefined;
  if (status !== undefined && wait !== undefined) {
    status = await holdFor(req, deps, status, wait);
    res.set('preference-applied', `wait=${wait}`);
  }
  if (status !== undefined && isTerminal(status.status)) {
    res.status(200).set('cache-control', 'no-store').json(statusDocument(status));
    return;
  }
  const queue = deps.queue.current();
  const statusUrl = `/v1/requests/${id}`;
  res
    .status(202)
    .location(statusUrl)
    .set('retry-after', String(pollAfterSeconds(queue.estimatedMs)))
    .json({ id, status: status?.status ?? 'queued', statusUrl, queue });
}

/** Holds the connection until the status is terminal, the wait runs out, the client leaves or shutdown starts. */
function holdFor(
  req: Request,
  deps: AppDeps,
  status: StatusMessage,
  seconds: number,
): Promise<StatusMessage> {
  const left = new AbortController();
  req.socket.once('close', () => left.abort());
  const signal = AbortSignal.any([left.signal, deps.shutdownSignal]);
  return deps.lookups.waitForTerminal(status, seconds * 1000, signal);
}

function answerWithUpstreamResult(res: Response, status: StatusMessage): void {
  const result = status.result;
  if (result === undefined) {
    const slug = status.status === 'expired' ? 'deadline-passed' : 'upstream-failed';
    sendProblem(res, slug, {
      detail: status.error?.message ?? `the request ended ${status.status}`,
      extensions: { requestId: status.id, requestStatus: status.status },
    });
    return;
  }
  for (const [name, value] of Object.entries(result.headers)) {
    if (name === 'content-length' || name === 'content-encoding') continue;
    // setHeader, not set: Express would add a charset to the upstream's own content type.
    res.setHeader(name, value);
  }
  const body =
    result.bodyBase64 !== undefined
      ? Buffer.from(result.bodyBase64, 'base64')
      : Buffer.from(result.body ?? '');
  res.status(result.status).end(body);
}

function noteSubmission(res: Response, body: { route?: unknown } | undefined, accepted: number): void {
  res.locals.submission = { route: String(body?.route ?? '(none)'), accepted } satisfies SubmissionNote;
}

/**
 * A sampled access log: method, route template, status and duration — never bodies, keys or query strings. It
 * runs inside the request's span, so the line carries the trace id.
 */
function accessLog(log: NonNullable<AppDeps['accessLog']>) {
  let seen = 0;
  return (req: Request, res: Response, next: NextFunction) => {
    const started = performance.now();
    seen += 1;
    const sampled = seen % log.sampleEvery === 0;
    res.once('finish', () => {
      if (!sampled && res.statusCode < 500) return;
      log.write({
        method: req.method,
        route: routeTemplate(req),
        status: res.statusCode,
        ms: Math.round((performance.now() - started) * 10) / 10,
        ...(res.getHeader('sluice-request-id') !== undefined
          ? { requestId: res.getHeader('sluice-request-id') }
          : {}),
        sampledOneIn: log.sampleEvery,
      });
    });
    next();
  };
}

function waitSeconds(req: Request, deps: AppDeps): number | undefined {
  const wait = preferredWaitSeconds(req.get('prefer'));
  const max = deps.gateway().config.limits.maxWaitSeconds;
  if (wait === 'invalid')
    throw new HttpProblem('invalid-prefer', { detail: 'wait must be a whole number of seconds' });
  if (wait !== undefined && wait > max) {
    throw new HttpProblem('invalid-prefer', { detail: `Prefer: wait may be at most ${max} seconds` });
  }
  return wait;
}

/** Counts headers before any handler runs: more than the limit answers 431. */
function headerLimits(deps: AppDeps) {
  return (req: Request, _res: Response, next: NextFunction) => {
    const max = deps.gateway().config.limits.maxHeaderCount;
    if (req.rawHeaders.length / 2 > max) {
      next(new HttpProblem('headers-too-large', { detail: `at most ${max} header fields` }));
      return;
    }
    next();
  };
}

type Config = ActiveGateway['config'];

/** A JSON body parser whose size limit follows the live configuration. */
function jsonBody(deps: AppDeps, limitOf: (config: Config) => number) {
  const parsers = new Map<number, ReturnType<typeof express.json>>();
  return (req: Request, res: Response, next: NextFunction) => {
    const limit = limitOf(deps.gateway().config);
    let parser = parsers.get(limit);
    if (parser === undefined) {
      parser = express.json({ limit, strict: false, type: () => true });
      parsers.set(limit, parser);
    }
    parser(req, res, next);
  };
}

/** The transparent form's body, any content type, as bytes. */
function rawBody(deps: AppDeps) {
  const parsers = new Map<number, ReturnType<typeof express.raw>>();
  return (req: Request, res: Response, next: NextFunction) => {
    const limit = deps.gateway().config.limits.maxBodyBytes;
    let parser = parsers.get(limit);
    if (parser === undefined) {
      parser = express.raw({ limit, type: () => true });
      parsers.set(limit, parser);
    }
    parser(req, res, next);
  };
}

export type { Principal };
