import type { Counter, Histogram, Meter } from '@opentelemetry/api';
import { isTerminal, type StatusMessage } from '@sluice/contracts';
import { latencyBucketsSeconds } from '@sluice/telemetry';

/** End-to-end latency (from the ingress's accept to the terminal status) and duplicate results, by route. */
export class AggregatorMetrics {
  readonly #endToEnd: Histogram;
  readonly #duplicates: Counter;

  constructor(meter: Meter) {
    this.#duplicates = meter.createCounter('sluice.request.duplicate_results', {
      description:
        'Results for requests that already had one, ignored: an upper bound on repeated upstream calls (at-least-once).',
    });
    this.#endToEnd = meter.createHistogram('sluice.request.duration', {
      unit: 's',
      description: 'Time from acceptance to the terminal status of a request, by route and status.',
      advice: { explicitBucketBoundaries: [...latencyBucketsSeconds, 120, 300, 900, 3_600] },
    });
  }

  duplicateResult(route: string): void {
    this.#duplicates.add(1, { 'sluice.route': route });
  }

  terminal(status: StatusMessage): void {
    if (!isTerminal(status.status)) return;
    const finishedAt = status.timings.finishedAt ?? status.updatedAt;
    this.#endToEnd.record(Math.max(0, finishedAt - status.timings.acceptedAt) / 1000, {
      'sluice.route': status.route,
      'sluice.status': status.status,
    });
  }
}
