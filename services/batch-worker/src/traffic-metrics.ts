import type { Counter, Meter } from '@opentelemetry/api';
import type { Dispatcher, PartitionPauser } from '@sluice/upstream';

/** The traffic engine's instruments: why tries waited, ejections, circuit states, paused partitions, backlogs. */
export class TrafficMetrics {
  readonly #waits: Counter;
  readonly #ejections: Counter;
  readonly #transitions: Counter;

  constructor(meter: Meter, dispatcher: () => Dispatcher | undefined, pauser: PartitionPauser) {
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
