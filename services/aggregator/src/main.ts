import {
  createServiceContext,
  listenHealth,
  provisionIfAllowed,
  runMain,
  startConsumer,
  startProducer,
  untilReady,
} from '@sluice/runtime';
import { Aggregator } from './aggregator.ts';
import { AggregatorMetrics } from './aggregator-metrics.ts';
import { clockDueAt } from './batch-reducer.ts';
import { BatchStore } from './batch-store.ts';
import { loadConfig } from './config.ts';

runMain('aggregator', async () => {
  const env = loadConfig(process.env);
  const ctx = createServiceContext('aggregator', env);
  ctx.shutdown.listen();
  await listenHealth(ctx);
  await provisionIfAllowed(ctx);
  const producer = await startProducer(ctx);
  const settings = {
    closedRetentionMs: env.AGGREGATOR_CLOSED_RETENTION_MS,
    orphanTimeoutMs: env.AGGREGATOR_ORPHAN_TIMEOUT_MS,
  };
  const store = new BatchStore({
    client: ctx.kafka,
    topic: ctx.topic('batchState'),
    groupId: ctx.tableGroup('batch-state'),
    clockDueAt: (state) => clockDueAt(state, settings),
    onInvalid: (detail) => ctx.logger.error({ detail }, 'unreadable record on the batch-state changelog'),
  });
  ctx.readiness.add({ name: 'batchStateFollowed', ready: () => store.isJoined() });
  await untilReady(ctx, 'reading the batch-state changelog', () => store.start());
  ctx.shutdown.add('close', 'close batch-state reader', () => store.close());
  const aggregator = new Aggregator({
    producer,
    store,
    topics: {
      status: ctx.topic('status'),
      completions: ctx.topic('completions'),
      deadLetters: ctx.topic('deadLetters'),
    },
    settings,
    tracer: ctx.telemetry.tracer,
    metrics: new AggregatorMetrics(ctx.telemetry.meter),
    onWriteError: (error, attempt) =>
      ctx.logger.error({ err: error, attempt }, 'writing aggregated results failed; writing them again'),
  });
  await startConsumer(ctx, {
    group: 'aggregator',
    topics: ['results'],
    maxInFlight: env.AGGREGATOR_MAX_IN_FLIGHT,
    // Records of one batch are folded in offset order by the aggregator's own per-batch queue, not chained
    // here, so that they can be folded and written together.
    handle: aggregator.handle,
    onAssigned: (partitions) => aggregator.assigned(partitions.map((tp) => tp.partition)),
    onRevoked: (partitions) => aggregator.revoked(partitions.map((tp) => tp.partition)),
  });
  let sweeping = false;
  const sweeper = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    aggregator
      .sweep()
      .catch((error: unknown) => ctx.logger.error({ err: error }, 'batch sweep failed; it runs again'))
      .finally(() => {
        sweeping = false;
      });
  }, env.AGGREGATOR_SWEEP_INTERVAL_MS);
  ctx.shutdown.add('intake', 'stop batch sweep', async () => clearInterval(sweeper));
  ctx.markStarted();
});
