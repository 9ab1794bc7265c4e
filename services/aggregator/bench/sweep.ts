/**
 * What the aggregator's clock sweep costs while it holds many closed batches (kept for their retention window:
 * at 1,000 requests/s and 10 minutes, 600,000). Prints figures; asserts nothing.
 *
 * N closed batches are written to a changelog topic on the test kit's broker and read into a BatchStore, as an
 * aggregator holds them after a restart; then sweeps run at a time when none is due. Each sweep's duration and the
 * longest the event loop was held meanwhile (a result arriving then waits that long) are printed. Before that, the
 * heap the held batches take: V8's heap in use after a full collection, before the store reads the changelog and
 * after, divided by the batches held (run with --expose-gc, as the script does; without it the figure is left out).
 *
 *   pnpm --filter @sluice/aggregator bench
 *   BENCH_SWEEP_BATCHES=100000
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { trace } from '@opentelemetry/api';
import { type BatchState, codecs, type ProgressMessage } from '@sluice/contracts';
import { createKafkaClient } from '@sluice/kafka';
import { startKafka, uniqueName } from '@sluice/testkit';
import { Aggregator } from '../src/aggregator.ts';
import { applyProgress, clockDueAt, retainedClosed } from '../src/batch-reducer.ts';
import { BatchStore } from '../src/batch-store.ts';

const count = Number(process.env.BENCH_SWEEP_BATCHES ?? 100_000);
const settings = { closedRetentionMs: 600_000, orphanTimeoutMs: 3_600_000 };
const t0 = Date.now();

const kafka = await startKafka();
const client = createKafkaClient('platformatic', {
  brokers: kafka.bootstrap.split(','),
  clientId: 'sweep-bench',
});
const admin = client.admin();
const topic = uniqueName('batch-state');
await admin.createTopics([{ name: topic, partitions: 1, replicationFactor: 1, config: {} }]);

// One closed single-request batch as the reducer leaves it, then copies of it under other ids.
const base = { tenant: 'acme', route: 'orders', acceptedAt: t0 };
const messages: ProgressMessage[] = [
  { kind: 'accepted', ...base, batchId: 'b', single: true, ids: ['r'], deadlineAt: t0 + 60_000 },
  {
    kind: 'finished',
    ...base,
    batchId: 'b',
    id: 'r',
    status: 'succeeded',
    attempts: [{ number: 1, startedAt: t0, durationMs: 5, status: 200 }],
    result: { status: 200, headers: {}, body: 'ok' },
    startedAt: t0,
    finishedAt: t0,
  },
];
let closed: BatchState | undefined;
for (const [offset, message] of messages.entries()) {
  const next = applyProgress(closed, message, BigInt(offset), t0).state;
  if (next) closed = next;
}
const template = retainedClosed(closed as BatchState);
const producer = client.producer();
await producer.connect();
for (let start = 0; start < count; start += 2_000) {
  const records = [];
  for (let i = start; i < Math.min(count, start + 2_000); i += 1) {
    const state = { ...template, batchId: `batch-${i}`, revision: 1 };
    records.push({ topic, key: state.batchId, partition: 0, ...codecs.batchState.encode(state) });
  }
  await producer.send(records);
}
await producer.close();

const store = new BatchStore({
  client,
  topic,
  groupId: uniqueName('sweep-bench'),
  clockDueAt: (state) => clockDueAt(state, settings),
  onInvalid: (detail) => console.error(detail),
});
/** V8's heap in use after a full collection, in bytes (undefined without --expose-gc). */
const heapUsed = () => {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (collect === undefined) return undefined;
  collect();
  collect();
  return process.memoryUsage().heapUsed;
};
const heapBefore = heapUsed();
await store.start();
const heapAfter = heapUsed();
const nobody = { connect: async () => {}, close: async () => {}, send: async () => {} };
const aggregator = new Aggregator({
  producer: nobody,
  store,
  topics: { status: 'status', completions: 'completions', deadLetters: 'dead-letters' },
  settings,
  tracer: trace.getTracer('bench'),
  now: () => t0 + 60_000,
});
aggregator.assigned([0]);
console.log(`${store.size} closed batches held, none due`);
if (heapBefore !== undefined && heapAfter !== undefined) {
  console.log(
    `heap held: ${((heapAfter - heapBefore) / 1024 / 1024).toFixed(1)} MB, ${((heapAfter - heapBefore) / store.size).toFixed(0)} bytes per closed batch`,
  );
}
for (let round = 1; round <= 5; round += 1) {
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  // The monitor measures between its own ticks: let it tick before the sweep starts.
  await new Promise((resolve) => setTimeout(resolve, 20));
  const started = performance.now();
  const written = await aggregator.sweep();
  const ms = performance.now() - started;
  await new Promise((resolve) => setTimeout(resolve, 20));
  delay.disable();
  console.log(
    `sweep ${round}: ${ms.toFixed(1)} ms, ${written} written, event loop held up to ${(delay.max / 1e6).toFixed(1)} ms`,
  );
}
await store.close();
await admin.deleteTopics([topic]);
await admin.close();
await kafka.stop();
