import {
  closeServer,
  createServiceContext,
  provisionIfAllowed,
  runMain,
  startProducer,
} from '@sluice/runtime';
import { createApp } from './app.ts';
import { loadConfig } from './config.ts';

runMain('ingress', async () => {
  const env = loadConfig(process.env);
  const ctx = createServiceContext('ingress', env);
  ctx.shutdown.listen();
  const app = createApp({ readiness: ctx.readiness });
  // Listen first so that /healthz answers while Kafka is still being reached; /readyz says when to send traffic.
  const server = app.listen(env.HTTP_PORT, env.HTTP_HOST);
  await new Promise<void>((resolve, reject) => server.once('listening', resolve).once('error', reject));
  ctx.logger.info({ address: server.address() }, 'listening');
  ctx.shutdown.add('intake', 'close HTTP server', () => closeServer(server));
  await provisionIfAllowed(ctx);
  await startProducer(ctx);
  ctx.logger.info('ready');
});
