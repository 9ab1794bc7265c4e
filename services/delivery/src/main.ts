import { tenantResultTopicSpecification } from '@sluice/contracts';
import type { GatewayConfig } from '@sluice/gateway-config';
import { provisionTopics } from '@sluice/kafka';
import {
  createServiceContext,
  listenHealth,
  provisionIfAllowed,
  runMain,
  startConsumer,
  startProducer,
  untilReady,
  watchGatewayConfig,
} from '@sluice/runtime';
import { loadConfig } from './config.ts';
import { Deliverer } from './deliverer.ts';
import { DeliveryMetrics } from './delivery-metrics.ts';
import { WebhookSender } from './webhook.ts';

runMain('delivery', async () => {
  const env = loadConfig(process.env);
  const ctx = createServiceContext('delivery', env);
  ctx.shutdown.listen();
  // Tenants that gain a result topic in a changed file get it provisioned before their next completion.
  const provisionTenantTopics = async (config: GatewayConfig) => {
    if (!env.KAFKA_PROVISION_TOPICS) return;
    const tenants = Object.entries(config.tenants).filter(([, tenant]) => tenant.resultTopic);
    const specs = tenants.map(([tenant]) =>
      tenantResultTopicSpecification(tenant, {
        prefix: env.KAFKA_TOPIC_PREFIX,
        replicationFactor: env.KAFKA_REPLICATION_FACTOR,
        ...(env.KAFKA_TOPIC_PARTITIONS !== undefined ? { partitions: env.KAFKA_TOPIC_PARTITIONS } : {}),
      }),
    );
    const admin = ctx.kafka.admin();
    try {
      await untilReady(ctx, 'provisioning tenant result topics', () => provisionTopics(admin, specs));
    } finally {
      await admin.close();
    }
  };
  const gateway = await watchGatewayConfig(ctx, env, (config) => {
    provisionTenantTopics(config).catch((error: unknown) =>
      ctx.logger.error({ err: error }, 'provisioning tenant result topics failed'),
    );
  });
  await listenHealth(ctx);
  await provisionIfAllowed(ctx);
  await provisionTenantTopics(gateway.current().config);
  const producer = await startProducer(ctx);
  const sender = new WebhookSender({
    timeoutMs: env.WEBHOOK_TIMEOUT_MS,
    networks: () => gateway.current().config.callbacks,
  });
  ctx.shutdown.add('close', 'close webhook connections', () => sender.close());
  const deliverer = new Deliverer({
    producer,
    sender,
    gateway: () => gateway.current().config,
    topics: {
      completions: ctx.topic('completions'),
      webhookRetries: ctx.topic('webhookRetries'),
      deadLetters: ctx.topic('deadLetters'),
      prefix: env.KAFKA_TOPIC_PREFIX,
    },
    tracer: ctx.telemetry.tracer,
    metrics: new DeliveryMetrics(ctx.telemetry.meter),
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
