import { join } from 'node:path';
import { tenantResultTopicName, topicDeclarations, topicName } from '@sluice/contracts';
import { createKafkaClient } from '@sluice/kafka';
import { repoRoot, ServiceProcess, uniqueName } from '@sluice/testkit';
import { describe, expect, inject, it } from 'vitest';

describe('the provisioning job (node dist/provision.js)', () => {
  it('creates every declared topic and the result topics of tenants that want one, then exits 0', async () => {
    const prefix = `${uniqueName('provision')}.`;
    const job = await ServiceProcess.start({
      name: 'ingress',
      entry: join(repoRoot(), 'services', 'ingress', 'src', 'provision.ts'),
      env: {
        KAFKA_BROKERS: inject('kafkaBrokers'),
        KAFKA_TOPIC_PREFIX: prefix,
        KAFKA_TOPIC_PARTITIONS: '1',
        SLUICE_GATEWAY_CONFIG: join(repoRoot(), 'deploy', 'gateway.example.yaml'),
      },
    });
    const exit = await job.exited();
    expect(exit.code, job.output()).toBe(0);
    const kafka = createKafkaClient('platformatic', {
      brokers: inject('kafkaBrokers').split(','),
      clientId: prefix,
    });
    const admin = kafka.admin();
    const expected = [
      ...(Object.keys(topicDeclarations) as Array<keyof typeof topicDeclarations>).map((id) =>
        topicName(id, prefix),
      ),
      tenantResultTopicName('acme', prefix),
    ];
    const found = await admin.describeTopics([...expected, tenantResultTopicName('globex', prefix)]);
    await admin.close();
    expect(found.map((topic) => topic.name).sort()).toEqual(expected.sort());
  });
});
