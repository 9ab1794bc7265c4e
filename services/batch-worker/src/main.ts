import { loadGatewayConfigFile } from '@sluice/gateway-config';
import {
  createServiceContext,
  listenHealth,
  provisionIfAllowed,
  runMain,
  startConsumer,
  startProducer,
} from '@sluice/runtime';
import { UpstreamClient } from '@sluice/upstream';
import { loadConfig } from './config.ts';
import { RequestHandler } from './request-handler.ts';

runMain('batch-worker', async () => {
  const env = loadConfig(process.env);
  const gateway = await loadGatewayConfigFile(env.SLUICE_GATEWAY_CONFIG);
  const ctx = createServiceContext('batch-worker', env);
  ctx.shutdown.listen();
  ctx.logger.info({ configVersion: gateway.version }, 'gateway configuration loaded');
  await listenHealth(ctx);
  await provisionIfAllowed(ctx);
  const producer = await startProducer(ctx);
  const client = new UpstreamClient({
    connections: (route) => gateway.config.routes[route]?.concurrency ?? 16,
  });
  ctx.shutdown.add('close', 'close upstream connections', () => client.close());
  const handler = new RequestHandler({
    producer,
    client,
    gateway: () => gateway.config,
    topics: {
      results: ctx.topic('results'),
      retries: ctx.topic('requestRetries'),
      deadLetters: ctx.topic('deadLetters'),
    },
  });
  // Records with one Kafka key (an ordering key) are handled one after another; all others concurrently.
  const orderingKey = (record: { key: Buffer | null }) => record.key?.toString();
  await startConsumer(ctx, {
    group: 'batchWorker',
    topics: ['requests'],
    maxInFlight: env.WORKER_MAX_IN_FLIGHT,
    handle: handler.handle,
    orderingKey,
  });
  await startConsumer(ctx, {
    group: 'batchWorkerRetries',
    topics: ['requestRetries'],
    maxInFlight: env.RETRY_MAX_IN_FLIGHT,
    handle: handler.handle,
    orderingKey,
  });
  ctx.markStarted();
});
