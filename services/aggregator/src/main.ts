import {
  createServiceContext,
  listenHealth,
  provisionIfAllowed,
  runMain,
  startConsumer,
  startProducer,
} from '@sluice/runtime';
import { loadConfig } from './config.ts';

runMain('aggregator', async () => {
  const env = loadConfig(process.env);
  const ctx = createServiceContext('aggregator', env);
  ctx.shutdown.listen();
  await listenHealth(ctx);
  await provisionIfAllowed(ctx);
  // Producer for status, batch state and completions.
  await startProducer(ctx);
  await startConsumer(ctx, {
    group: 'aggregator',
    topics: ['results'],
    maxInFlight: env.AGGREGATOR_MAX_IN_FLIGHT,
    // Processing logic arrives with the pipeline (issue #3); until then records are acknowledged and logged.
    handle: async (record) => {
      ctx.logger.debug(
        { topic: record.topic, partition: record.partition, offset: String(record.offset) },
        'record',
      );
    },
  });
  ctx.logger.info('ready');
});
