/**
 * Provisions Sluice's topics and exits: the Helm chart's pre-install/pre-upgrade hook Job runs this (the ingress
 * image, `node dist/provision.js`), fed from the same topic declarations as the services, so that a platform that
 * disables start-up provisioning in the services still gets every topic, tenants' result topics included.
 */

import { kafkaConnectionFrom } from '@sluice/config';
import { tenantResultTopicSpecification, topicSpecifications } from '@sluice/contracts';
import { loadGatewayConfigFile } from '@sluice/gateway-config';
import { createKafkaClient, provisionTopics } from '@sluice/kafka';
import { createLogger, runMain } from '@sluice/runtime';
import { loadProvisionConfig } from './config.ts';

runMain('provision', async () => {
  const env = loadProvisionConfig(process.env);
  const logger = createLogger('provision', env.LOG_LEVEL);
  const kafka = createKafkaClient(env.KAFKA_CLIENT, kafkaConnectionFrom(env, 'sluice-provision'));
  const layout = {
    prefix: env.KAFKA_TOPIC_PREFIX,
    replicationFactor: env.KAFKA_REPLICATION_FACTOR,
    ...(env.KAFKA_TOPIC_PARTITIONS !== undefined ? { partitions: env.KAFKA_TOPIC_PARTITIONS } : {}),
  };
  const specs = topicSpecifications(layout);
  if (env.SLUICE_GATEWAY_CONFIG !== undefined) {
    const { config } = await loadGatewayConfigFile(env.SLUICE_GATEWAY_CONFIG, env.SLUICE_GATEWAY_SECRETS);
    for (const [tenant, entry] of Object.entries(config.tenants)) {
      if (entry.resultTopic) specs.push(tenantResultTopicSpecification(tenant, layout));
    }
  }
  const admin = kafka.admin();
  try {
    const report = await provisionTopics(admin, specs);
    logger.info({ created: report.created, existing: report.existing.length }, 'topics provisioned');
    for (const mismatch of report.mismatches) logger.warn(mismatch, 'topic differs from its declaration');
  } finally {
    await admin.close();
  }
  process.exit(0);
});
