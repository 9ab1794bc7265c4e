/**
 * Producer settings both adapters share, so that benchmarks compare the clients and not their settings. No linger:
 * an idle producer sends at once, and records that arrive while a send is in flight leave together when it returns
 * (ProduceBatcher), so batches grow with load by themselves. A 2 ms linger added ~6 ms to a `Prefer: wait` request
 * at 25/s (p50 17 → 10–11 ms, p99 30–32 → 26 ms over its three hops) and bought no throughput (saturated accept
 * 6,413 against 6,251/s, end to end 1,480 against 1,530/s: within the runs' noise).
 */
export const producerDefaults = {
  lingerMs: 0,
  maxBatchRecords: 1_000,
} as const;

/**
 * How long one send keeps trying before it fails, as the Java client's `delivery.timeout.ms`: about 60 s, with
 * delays from 250 ms doubling to 2 s. A send is one call for records of several partitions (a submission's
 * request, status and announcement, coalesced with other callers'); when a broker dies, the partitions it led
 * fail until the controller has moved their leadership, while the others are written. Giving up within that
 * window leaves the send written in part and reported failed: a submission answered "nothing was accepted"
 * whose request record is in Kafka and runs (CI saw this with the 2 s the client had before). Retrying through
 * the failover makes the outcome whole; the idempotent producer keeps the retries free of duplicates.
 */
export const producerDelivery = {
  retries: 32,
  initialDelayMs: 250,
  maxDelayMs: 2_000,
  delayMs(attempt: number): number {
    return Math.min(this.initialDelayMs * 2 ** Math.max(0, attempt - 1), this.maxDelayMs);
  },
} as const;
