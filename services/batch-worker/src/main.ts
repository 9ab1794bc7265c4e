import { laneTopics } from '@sluice/contracts';
import type { RecordProcessor, TopicPartition } from '@sluice/kafka';
import {
  createServiceContext,
  listenHealth,
  provisionIfAllowed,
  runMain,
  startConsumer,
  startProducer,
  watchGatewayConfig,
} from '@sluice/runtime';
import { Coalescer, Dispatcher, PartitionPauser, UpstreamClient } from '@sluice/upstream';
import { loadConfig } from './config.ts';
import { RequestHandler } from './request-handler.ts';
import { WorkerMetrics } from './worker-metrics.ts';

runMain('batch-worker', async () => {
  const env = loadConfig(process.env);
  const ctx = createServiceContext('batch-worker', env);
  ctx.shutdown.listen();
  let dispatcher: Dispatcher | undefined;
  const gateway = await watchGatewayConfig(ctx, env, () => dispatcher?.reconfigure());
  const routes = () => gateway.current().config.routes;
  await listenHealth(ctx);
  await provisionIfAllowed(ctx);
  const producer = await startProducer(ctx);
  const client = new UpstreamClient({
    connections: (route) => routes()[route]?.concurrency ?? 16,
    protocol: (route) => routes()[route]?.upstream.protocol ?? 'http1',
  });
  ctx.shutdown.add('close', 'close upstream connections', () => client.close());
  // Partitions are paused on the consumer that owns their topic (lanes or retries).
  const processors = new Map<string, RecordProcessor>();
  const byOwner = (
    partitions: TopicPartition[],
    act: (processor: RecordProcessor, tps: TopicPartition[]) => void,
  ) => {
    for (const [topic, processor] of processors) {
      const owned = partitions.filter((tp) => tp.topic === topic);
      if (owned.length > 0) act(processor, owned);
    }
  };
  const pauser = new PartitionPauser(
    (partitions) => byOwner(partitions, (processor, tps) => processor.pause(tps)),
    (partitions) => byOwner(partitions, (processor, tps) => processor.resume(tps)),
  );
  const metrics = new WorkerMetrics(ctx.telemetry.meter, () => dispatcher, pauser);
  dispatcher = new Dispatcher({
    client,
    route: (name) => routes()[name],
    minShare: { high: 0, ...gateway.current().config.lanes.minShare },
    locality: { region: env.REGION, zone: env.ZONE },
    pauser,
    backlogLimit: env.WORKER_UPSTREAM_BACKLOG,
    onWait: (route, reason) => metrics.waited(route, reason),
    onCircuitTransition: (route, target, from, to) => metrics.circuitTransition(route, target, from, to),
    onEjection: (route, target) => metrics.ejected(route, target),
  });
  dispatcher.warm(Object.keys(routes()));
  ctx.shutdown.add('close', 'stop health checks', async () => dispatcher?.close());
  const handler = new RequestHandler({
    producer,
    dispatcher,
    coalescer: new Coalescer(dispatcher, (route) => routes()[route]?.coalesce),
    gateway: () => gateway.current().config,
    tracer: ctx.telemetry.tracer,
    metrics,
    topics: {
      results: ctx.topic('results'),
      retries: ctx.topic('requestRetries'),
      deadLetters: ctx.topic('deadLetters'),
    },
  });
  // Records with one Kafka key (an ordering key) are handled one after another; all others concurrently.
  const orderingKey = (record: { key: Buffer | null }) => record.key?.toString();
  const lanesProcessor = await startConsumer(ctx, {
    group: 'batchWorker',
    topics: [laneTopics.high, laneTopics.normal, laneTopics.low],
    maxInFlight: env.WORKER_MAX_IN_FLIGHT,
    handle: handler.handle,
    orderingKey,
  });
  for (const id of Object.values(laneTopics)) processors.set(ctx.topic(id), lanesProcessor);
  const retriesProcessor = await startConsumer(ctx, {
    group: 'batchWorkerRetries',
    topics: ['requestRetries'],
    maxInFlight: env.RETRY_MAX_IN_FLIGHT,
    handle: handler.handle,
    orderingKey,
  });
  processors.set(ctx.topic('requestRetries'), retriesProcessor);
  ctx.markStarted();
});
