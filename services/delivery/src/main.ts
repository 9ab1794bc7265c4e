import { tenantResultTopicSpecification } from '@sluice/contracts';
import { loadGatewayConfigFile } from '@sluice/gateway-config';
import { provisionTopics } from '@sluice/kafka';
import {
  createServiceContext,
  listenHealth,
  provisionIfAllowed,
  runMain,
  startConsumer,
  startProducer,
  untilReady,
} from '@sluice/runtime';
import { loadConfig } from './config.ts';
import { Deliverer } from './deliverer.ts';
import { WebhookSender } from './webhook.ts';

runMain('delivery', async () => {
  const env = loadConfig(process.env);
  const gateway = await loadGatewayConfigFile(env.SLUICE_GATEWAY_CONFIG);
  const ctx = createServiceContext('delivery', env);
  ctx.shutdown.listen();
  ctx.logger.info({ configVersion: gateway.version }, 'gateway configuration loaded');
  await listenHealth(ctx);
  await provisionIfAllowed(ctx);
  if (env.KAFKA_PROVISION_TOPICS) {
    const tenants = Object.entries(gateway.config.tenants).filter(([, tenant]) => tenant.resultTopic);
    const admin = ctx.kafka.admin();
    const specs = tenants.map(([tenant]) =>
      tenantResultTopicSpecification(tenant, {
        prefix: env.KAFKA_TOPIC_PREFIX,
        replicationFactor: env.KAFKA_REPLICATION_FACTOR,
        ...(env.KAFKA_TOPIC_PARTITIONS !== undefined ? { partitions: env.KAFKA_TOPIC_PARTITIONS } : {}),
      }),
    );
    await untilReady(ctx, 'provisioning tenant result topics', () => provisionTopics(admin, specs));
    await admin.close();
  }
  const producer = await startProducer(ctx);
  const sender = new WebhookSender({
    timeoutMs: env.WEBHOOK_TIMEOUT_MS,
    allowPrivateNetworks: () => gateway.config.callbacks.allowPrivateNetworks,
  });
  ctx.shutdown.add('close', 'close webhook connections', () => sender.close());
  const deliverer = new Deliverer({
    producer,
    sender,
    gateway: () => gateway.config,
    topics: {
      completions: ctx.topic('completions'),
      webhookRetries: ctx.topic('webhookRetries'),
      deadLetters: ctx.topic('deadLetters'),
      prefix: env.KAFKA_TOPIC_PREFIX,
    },
    policy: {
      maxAttempts: env.WEBHOOK_MAX_ATTEMPTS,
      baseDelayMs: env.WEBHOOK_BASE_DELAY_MS,
      maxDelayMs: env.WEBHOOK_MAX_DELAY_MS,
    },
  });
  await startConsumer(ctx, {
    group: 'delivery',
    topics: ['completions'],
    maxInFlight: env.DELIVERY_MAX_IN_FLIGHT,
    handle: deliverer.handle,
  });
  await startConsumer(ctx, {
    group: 'deliveryRetries',
    topics: ['webhookRetries'],
    maxInFlight: env.WEBHOOK_RETRY_MAX_IN_FLIGHT,
    handle: deliverer.handle,
  });
  ctx.markStarted();
});
