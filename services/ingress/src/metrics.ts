import type { Counter, Histogram, Meter } from '@opentelemetry/api';
import { latencyBucketsSeconds } from '@sluice/telemetry';
import type { NextFunction, Request, Response } from 'express';

/** What a submission handler tells the metrics: which route, and how many requests were accepted. */
export interface SubmissionNote {
  route: string;
  accepted: number;
}

/** The ingress's instruments (OpenTelemetry semantic conventions for HTTP; `sluice.*` for the queue). */
export class IngressMetrics {
  readonly #duration: Histogram;
  readonly #accept: Histogram;
  readonly #accepted: Counter;
  readonly #rejected: Counter;
  readonly #batchSize: Histogram;
  readonly #unarbitrated: Counter;
  readonly #statusesApplied: Counter;
  readonly #meter: Meter;

  constructor(meter: Meter) {
    this.#meter = meter;
    const advice = { explicitBucketBoundaries: latencyBucketsSeconds };
    this.#duration = meter.createHistogram('http.server.request.duration', {
      unit: 's',
      description: 'Duration of HTTP server requests.',
      advice,
    });
    this.#accept = meter.createHistogram('sluice.ingress.accept.duration', {
      unit: 's',
      description: 'Time from receiving a submission to answering it, Kafka acknowledgement included.',
      advice,
    });
    this.#accepted = meter.createCounter('sluice.requests.accepted', {
      unit: '{request}',
      description: 'Requests accepted (answered 202, or 200 within Prefer: wait), by route.',
    });
    this.#batchSize = meter.createHistogram('sluice.batch.size', {
      unit: '{request}',
      description: 'Requests per accepted submission (1 for a single request), by route.',
      advice: { explicitBucketBoundaries: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000] },
    });
    this.#rejected = meter.createCounter('sluice.requests.rejected', {
      unit: '{request}',
      description: 'Submissions refused with a problem document, by status code and route.',
    });
    this.#unarbitrated = meter.createCounter('sluice.idempotency.unarbitrated', {
      unit: '{submission}',
      description:
        'Submissions with an idempotency key accepted under derived ids because the state store could not claim the key.',
    });
    this.#statusesApplied = meter.createCounter('sluice.status_feed.applied', {
      unit: '{status}',
      description:
        'Statuses this replica wrote to the state store from the status topic (replicas sharing Redis split them).',
    });
  }

  noteStatusesApplied(count: number): void {
    this.#statusesApplied.add(count);
  }

  /** The shedder's readings, observed at each scrape (its refusals never reach Express, so are counted here). */
  observeShedder(
    read: () => { delayMs: number; refusedShare: number; inFlight: number; refused: number },
  ): void {
    this.#meter
      .createObservableGauge('sluice.ingress.event_loop.delay', {
        unit: 's',
        description: "How late the ingress's event-loop timer fired in the last window.",
      })
      .addCallback((result) => result.observe(read().delayMs / 1000));
    this.#meter
      .createObservableGauge('sluice.ingress.shed.share', {
        unit: '1',
        description: 'Share of new submissions refused now because the event loop runs late (0..1).',
      })
      .addCallback((result) => result.observe(read().refusedShare));
    this.#meter
      .createObservableUpDownCounter('sluice.ingress.submissions.in_flight', {
        unit: '{submission}',
        description:
          'Submissions this replica is handling now (received, not yet answered; Prefer: wait holds excluded).',
      })
      .addCallback((result) => result.observe(read().inFlight));
    this.#meter
      .createObservableCounter('sluice.ingress.shed', {
        unit: '{submission}',
        description:
          'Submissions refused with 503 at-capacity: too many in flight, or the event loop ran late.',
      })
      .addCallback((result) => result.observe(read().refused));
  }

  noteUnarbitrated(): void {
    this.#unarbitrated.add(1);
  }

  /** Express middleware: measures every request when its answer is finished. */
  middleware() {
    return (req: Request, res: Response, next: NextFunction) => {
      const started = performance.now();
      res.once('finish', () => {
        const seconds = (performance.now() - started) / 1000;
        const route = routeTemplate(req);
        this.#duration.record(seconds, {
          'http.request.method': req.method,
          'http.response.status_code': res.statusCode,
          'http.route': route,
        });
        if (!isSubmission(req, route)) return;
        const note = res.locals.submission as SubmissionNote | undefined;
        const sluiceRoute = note?.route ?? routeNameOf(req);
        if (res.statusCode < 300 && note !== undefined) {
          this.#accepted.add(note.accepted, { 'sluice.route': sluiceRoute });
          this.#batchSize.record(note.accepted, { 'sluice.route': sluiceRoute });
          this.#accept.record(seconds, { 'sluice.route': sluiceRoute });
        } else if (res.statusCode >= 400) {
          this.#rejected.add(1, { 'http.response.status_code': res.statusCode, 'sluice.route': sluiceRoute });
        }
      });
      next();
    };
  }
}

function isSubmission(req: Request, route: string): boolean {
  return (
    (req.method === 'POST' && (route === '/v1/requests' || route === '/v1/batches')) || route === '/r/{route}'
  );
}

/** The matched route's template, never the raw path: ids in paths would explode the series. */
export function routeTemplate(req: Request): string {
  const path = req.path;
  if (path.startsWith('/r/')) return '/r/{route}';
  if (/^\/v1\/requests\/[^/]+$/.test(path)) return '/v1/requests/{id}';
  if (/^\/v1\/batches\/[^/]+\/events$/.test(path)) return '/v1/batches/{id}/events';
  if (/^\/v1\/batches\/[^/]+$/.test(path)) return '/v1/batches/{id}';
  if (['/v1/requests', '/v1/batches', '/healthz', '/readyz', '/metrics', '/openapi.json'].includes(path))
    return path;
  return '(unmatched)';
}

/** The route named by a refused submission, when it named a known-looking one; else "(none)". */
function routeNameOf(req: Request): string {
  const fromPath = /^\/r\/([a-z0-9-]{1,63})(\/|$)/.exec(req.path)?.[1];
  const fromBody = (req.body as { route?: unknown } | undefined)?.route;
  const name = fromPath ?? (typeof fromBody === 'string' ? fromBody : undefined);
  return name !== undefined && /^[a-z0-9][a-z0-9-]{0,62}$/.test(name) ? name : '(none)';
}
