import type { Counter, Histogram, Meter } from '@opentelemetry/api';
import type { RequestMessage } from '@sluice/contracts';
import { latencyBucketsSeconds } from '@sluice/telemetry';
import type { Dispatcher, PartitionPauser, Target, UpstreamOutcome } from '@sluice/upstream';

/**
 * The batch-worker's instruments: upstream tries (OpenTelemetry's HTTP client duration), retries, dead letters,
 * and the traffic engine's state — why tries waited, ejections, circuit states, paused partitions, backlogs.
 */
export class WorkerMetrics {
  readonly #waits: Counter;
  readonly #ejections: Counter;
  readonly #transitions: Counter;
  readonly #duration: Histogram;
  readonly #retries: Counter;
  readonly #deadLetters: Counter;

  constructor(meter: Meter, dispatcher: () => Dispatcher | undefined, pauser: PartitionPauser) {
    this.#duration = meter.createHistogram('http.client.request.duration', {
      unit: 's',
      description: 'Duration of upstream tries, by route, target, method and status (or error type).',
      advice: { explicitBucketBoundaries: latencyBucketsSeconds },
    });
    this.#retries = meter.createCounter('sluice.upstream.retries', {
      unit: '{retry}',
      description: 'Requests scheduled for another try, by route.',
    });
    this.#deadLetters = meter.createCounter('sluice.dead_letters', {
      unit: '{record}',
      description: 'Records dead-lettered, by reason.',
    });
    this.#waits = meter.createCounter('sluice.upstream.shaping.waits', {
      unit: '{wait}',
      description:
        'Times a try had to wait for its upstream, by route and reason (rate, concurrency, down, ...).',
    });
    this.#ejections = meter.createCounter('sluice.upstream.ejections', {
      unit: '{ejection}',
      description: 'Targets ejected by outlier detection, by route and target.',
    });
    this.#transitions = meter.createCounter('sluice.upstream.circuit.transitions', {
      unit: '{transition}',
      description: 'Circuit breaker state changes, by route, target and new state.',
    });
    meter
      .createObservableGauge('sluice.upstream.circuit.state', {
        description: 'Circuit breaker state per target: 1 on the current state (closed, open, half-open).',
      })
      .addCallback((result) => {
        const now = Date.now();
        for (const [route] of Object.entries(dispatcher()?.backlog() ?? {})) {
          for (const target of dispatcher()?.upstream(route).snapshot(now) ?? []) {
            result.observe(1, {
              'sluice.route': route,
              'sluice.target': target.targetId,
              state: target.circuit,
            });
          }
        }
      });
    meter
      .createObservableGauge('sluice.upstream.backlog', {
        unit: '{request}',
        description: 'Tries waiting for admission to their upstream, by route.',
      })
      .addCallback((result) => {
        for (const [route, waiting] of Object.entries(dispatcher()?.backlog() ?? {})) {
          result.observe(waiting, { 'sluice.route': route });
        }
      });
    meter
      .createObservableGauge('sluice.consumer.partitions.paused', {
        unit: '{partition}',
        description: 'Partitions paused because the upstreams their records wait for have no room.',
      })
      .addCallback((result) => result.observe(pauser.held().length));
  }

  attempt(request: RequestMessage, target: Target, outcome: UpstreamOutcome): void {
    const url = new URL(target.url);
    this.#duration.record(outcome.durationMs / 1000, {
      'http.request.method': request.method,
      'server.address': url.hostname,
      'sluice.route': request.route,
      'sluice.target': target.id,
      ...(outcome.kind === 'response'
        ? { 'http.response.status_code': outcome.status }
        : { 'error.type': outcome.code }),
    });
  }

  retried(route: string): void {
    this.#retries.add(1, { 'sluice.route': route });
  }

  deadLettered(reason: string): void {
    this.#deadLetters.add(1, { reason });
  }

  waited(route: string, reason: string): void {
    this.#waits.add(1, { 'sluice.route': route, reason });
  }

  ejected(route: string, target: string): void {
    this.#ejections.add(1, { 'sluice.route': route, 'sluice.target': target });
  }

  circuitTransition(route: string, target: string, _from: string, to: string): void {
    this.#transitions.add(1, { 'sluice.route': route, 'sluice.target': target, state: to });
  }
}
