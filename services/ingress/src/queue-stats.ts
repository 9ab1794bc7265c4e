import type { PartitionLag } from '@sluice/kafka';

export interface QueueSample {
  at: number;
  /** Records waiting for the batch-workers' group, summed over the request topics' partitions. */
  lag: bigint;
  /** Sum of the group's committed offsets: its growth over time is the drain rate. */
  committed: bigint;
}

export interface QueueEstimate {
  position: number;
  estimatedMs: number | null;
}

/** Adds up a group's lag: what is waiting and how far the group has got. */
export function sampleOf(lags: PartitionLag[], at: number): QueueSample {
  let lag = 0n;
  let committed = 0n;
  for (const partition of lags) {
    lag += partition.lag > 0n ? partition.lag : 0n;
    if (partition.committed > 0n) committed += partition.committed;
  }
  return { at, lag, committed };
}

/**
 * The drain rate in records per second, smoothed (EWMA) so that one bursty interval does not swing estimates;
 * undefined until two samples are apart in time.
 */
export function nextDrainRate(
  previousRate: number | undefined,
  before: QueueSample,
  after: QueueSample,
  smoothing = 0.3,
): number | undefined {
  const seconds = (after.at - before.at) / 1000;
  if (seconds <= 0) return previousRate;
  const drained = Number(after.committed - before.committed);
  // A group that reset or was rebalanced can appear to go backwards; that interval says nothing.
  if (drained < 0) return previousRate;
  const rate = drained / seconds;
  return previousRate === undefined ? rate : previousRate + smoothing * (rate - previousRate);
}

/** Where a newly accepted request stands: behind the current lag, drained at the measured rate. */
export function estimate(sample: QueueSample | undefined, drainRate: number | undefined): QueueEstimate {
  const position = sample === undefined ? 0 : Number(sample.lag);
  if (position === 0) return { position: 0, estimatedMs: 0 };
  if (drainRate === undefined || drainRate <= 0) return { position, estimatedMs: null };
  return { position, estimatedMs: Math.round((position / drainRate) * 1000) };
}

/** Retry-After for a 202: when a status lookup is worth making, between 1 and 60 seconds. */
export function pollAfterSeconds(estimateMs: number | null): number {
  if (estimateMs === null) return 5;
  return Math.min(60, Math.max(1, Math.ceil(estimateMs / 1000)));
}

/**
 * Samples the batch-workers' lag on the request topics at an interval and keeps the drain rate. Lives in every
 * ingress replica; all of them read the same group offsets, so any replica gives the same estimate.
 */
export class QueueStats {
  readonly #read: () => Promise<PartitionLag[]>;
  readonly #intervalMs: number;
  #last: QueueSample | undefined;
  #rate: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** Requests this replica accepted since the last sample: the queue grows between samples too. */
  #acceptedSinceSample = 0;
  #onError: (error: unknown) => void;

  constructor(read: () => Promise<PartitionLag[]>, intervalMs: number, onError: (error: unknown) => void) {
    this.#read = read;
    this.#intervalMs = intervalMs;
    this.#onError = onError;
  }

  async start(): Promise<void> {
    await this.#sample();
    this.#timer = setInterval(() => void this.#sample(), this.#intervalMs);
    this.#timer.unref();
  }

  async #sample(): Promise<void> {
    try {
      const next = sampleOf(await this.#read(), Date.now());
      // Whatever was acknowledged before the read finished is taken to be in it. Counting the requests accepted
      // during a slow read twice would overstate the lag by the read's duration times the accept rate; this way
      // it is understated by at most the few accepted between the broker's answer and here, until the next sample.
      this.#acceptedSinceSample = 0;
      if (this.#last !== undefined) this.#rate = nextDrainRate(this.#rate, this.#last, next);
      this.#last = next;
    } catch (error) {
      this.#onError(error);
    }
  }

  /** The estimate for a request accepted now; the lag sampled last plus those accepted in this call. */
  current(): QueueEstimate {
    return estimate(this.#last, this.#rate);
  }

  /**
   * Retry-After for a refusal under backpressure: the seconds until the queue, drained at the measured rate,
   * is down to `lag`; between 1 and 60, and 5 while no rate is known.
   */
  secondsToDrainTo(lag: number): number {
    const waiting = this.#last === undefined ? 0 : Number(this.#last.lag) - lag;
    if (waiting <= 0) return 1;
    if (this.#rate === undefined || this.#rate <= 0) return 5;
    return Math.min(60, Math.max(1, Math.ceil(waiting / this.#rate)));
  }

  /** Counts requests accepted now, so that backpressure sees them before the next sample does. */
  noteAccepted(count: number): void {
    this.#acceptedSinceSample += count;
  }

  /** The sampled lag plus what this replica accepted since; undefined before the first sample. */
  get lag(): bigint | undefined {
    return this.#last === undefined ? undefined : this.#last.lag + BigInt(this.#acceptedSinceSample);
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
  }
}
