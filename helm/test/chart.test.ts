import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ScaledObject, TriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { groupName, laneTopics, topicName } from '@sluice/contracts';
import { parseGatewayConfig } from '@sluice/gateway-config';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { Job } from 'kubernetes-models/batch/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Secret, Service } from 'kubernetes-models/v1';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { chartDir, goldenDir, helm, render, scenarios } from '../scripts/render.ts';

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

const models: Record<string, new (data: never) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'v1/Service': Service,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'batch/v1/Job': Job,
  'keda.sh/v1alpha1/ScaledObject': ScaledObject,
  'keda.sh/v1alpha1/TriggerAuthentication': TriggerAuthentication,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
};

/** The rendered documents; YAML that a strict parser refuses (a key twice, for one) fails the test. */
function manifests(text: string): Manifest[] {
  return parseAllDocuments(text, { uniqueKeys: true })
    .map((doc) => {
      if (doc.errors.length > 0)
        throw new Error(`invalid YAML rendered: ${doc.errors.map((e) => e.message).join('; ')}`);
      return doc.toJS() as Manifest | null;
    })
    .filter((doc): doc is Manifest => doc !== null);
}

/** Validates every manifest against the Kubernetes API schema of its kind (and KEDA's, the Prometheus Operator's). */
function validateAll(list: Manifest[]): void {
  for (const manifest of list) {
    const Model = models[`${manifest.apiVersion}/${manifest.kind}`];
    expect(Model, `a schema for ${manifest.apiVersion} ${manifest.kind}`).toBeDefined();
    expect(
      () => new (Model as new (data: Manifest) => { validate(): void })(manifest).validate(),
      `${manifest.kind} ${manifest.metadata.name}`,
    ).not.toThrow();
  }
}

const byKind = (list: Manifest[], kind: string) => list.filter((m) => m.kind === kind);

describe('the Helm chart', () => {
  it('passes helm lint with the default values and with the multi-region values', () => {
    for (const args of [[], ['-f', join(chartDir, 'values-multi-region.yaml')]]) {
      const result = helm(['lint', chartDir, ...args]);
      expect(result.stdout + result.stderr, args.join(' ')).toContain('0 chart(s) failed');
      expect(result.code).toBe(0);
    }
  });

  it('renders valid Kubernetes objects for both value files, equal to the committed golden files', async () => {
    for (const [name, scenario] of Object.entries(scenarios)) {
      const rendered = render(scenario.release, [...scenario.args]);
      const list = manifests(rendered);
      validateAll(list);
      const golden = await readFile(join(goldenDir, `${name}.yaml`), 'utf8');
      // `pnpm --filter @sluice/helm golden` rewrites them after a deliberate change.
      expect(rendered, `helm/golden/${name}.yaml`).toBe(golden);
    }
  });

  it('renders one Deployment, Service and PodDisruptionBudget per service with probes, resources and zone spread', () => {
    const list = manifests(render('sluice', []));
    expect(
      byKind(list, 'Deployment')
        .map((d) => d.metadata.name)
        .sort(),
    ).toEqual(['sluice-aggregator', 'sluice-batch-worker', 'sluice-delivery', 'sluice-ingress']);
    expect(byKind(list, 'Service')).toHaveLength(4);
    expect(byKind(list, 'PodDisruptionBudget')).toHaveLength(4);
    for (const deployment of byKind(list, 'Deployment')) {
      const pod = (deployment.spec as { template: { spec: Record<string, unknown> } }).template.spec as {
        containers: Array<{
          livenessProbe: { httpGet: { path: string } };
          readinessProbe: { httpGet: { path: string } };
          resources: unknown;
        }>;
        topologySpreadConstraints: Array<{ topologyKey: string }>;
      };
      const [container] = pod.containers;
      expect(container?.livenessProbe.httpGet.path).toBe('/healthz');
      expect(container?.readinessProbe.httpGet.path).toBe('/readyz');
      expect(container?.resources).toBeDefined();
      expect(pod.topologySpreadConstraints.map((c) => c.topologyKey)).toContain(
        'topology.kubernetes.io/zone',
      );
    }
    const config = byKind(list, 'ConfigMap')[0] as Manifest;
    expect(Object.keys(config.data ?? {})).toEqual(['gateway.yaml']);
    const secret = byKind(list, 'Secret')[0] as Manifest;
    expect(Object.keys(secret.stringData ?? {})).toEqual(['secrets.yaml']);
    const job = byKind(list, 'Job')[0] as Manifest & { metadata: { annotations: Record<string, string> } };
    expect(job.metadata.annotations['helm.sh/hook']).toBe('pre-install,pre-upgrade');
  });

  it('scales the ingress by CPU, and the consumers by lag with KEDA when the cluster has it, by CPU when not', () => {
    const without = manifests(render('sluice', []));
    expect(byKind(without, 'ScaledObject')).toHaveLength(0);
    expect(
      byKind(without, 'HorizontalPodAutoscaler')
        .map((h) => h.metadata.name)
        .sort(),
    ).toEqual(['sluice-aggregator', 'sluice-batch-worker', 'sluice-delivery', 'sluice-ingress']);
    const withKeda = manifests(
      render('sluice', [
        '--api-versions',
        'keda.sh/v1alpha1',
        '--set',
        'services.batch-worker.autoscaling.maxReplicas=40',
      ]),
    );
    validateAll(withKeda);
    expect(byKind(withKeda, 'HorizontalPodAutoscaler').map((h) => h.metadata.name)).toEqual([
      'sluice-ingress',
    ]);
    const scaled = byKind(withKeda, 'ScaledObject') as Array<
      Manifest & {
        spec: {
          maxReplicaCount: number;
          triggers: Array<{ type: string; metadata: Record<string, string> }>;
        };
      }
    >;
    expect(scaled.map((s) => s.metadata.name).sort()).toEqual([
      'sluice-aggregator',
      'sluice-batch-worker',
      'sluice-delivery',
    ]);
    for (const object of scaled) {
      // Never more consumers than partitions (12 by default), even when asked for 40.
      expect(object.spec.maxReplicaCount).toBeLessThanOrEqual(12);
      expect(
        object.spec.triggers.every(
          (t) => t.type === 'kafka' && t.metadata.consumerGroup?.startsWith('sluice.'),
        ),
      ).toBe(true);
    }
    const worker = scaled.find((s) => s.metadata.name === 'sluice-batch-worker');
    expect(worker?.spec.triggers.map((t) => t.metadata.topic).sort()).toEqual([
      'sluice.requests.high.v1',
      'sluice.requests.low.v1',
      'sluice.requests.v1',
    ]);
  });

  it('scales on the topics and groups the code declares (packages/contracts), with the deployment prefix', () => {
    const prefix = 'prod.';
    const list = manifests(
      render('sluice', ['--api-versions', 'keda.sh/v1alpha1', '--set', `kafka.topicPrefix=${prefix}`]),
    );
    const watched = Object.fromEntries(
      byKind(list, 'ScaledObject').map((object) => {
        const triggers = (object.spec as { triggers: Array<{ metadata: Record<string, string> }> }).triggers;
        return [
          object.metadata.name,
          {
            topics: triggers.map((t) => t.metadata.topic).sort(),
            groups: [...new Set(triggers.map((t) => t.metadata.consumerGroup))],
          },
        ];
      }),
    );
    expect(watched).toEqual({
      'sluice-batch-worker': {
        topics: Object.values(laneTopics)
          .map((id) => topicName(id, prefix))
          .sort(),
        groups: [groupName('batchWorker', prefix)],
      },
      'sluice-aggregator': {
        topics: [topicName('results', prefix)],
        groups: [groupName('aggregator', prefix)],
      },
      'sluice-delivery': {
        topics: [topicName('completions', prefix)],
        groups: [groupName('delivery', prefix)],
      },
    });
  });

  it('rejects unknown keys through values.schema.json', () => {
    for (const set of ['typo=1', 'services.ingress.replica=3', 'kafka.bootstrapServer=x:1']) {
      const result = helm(['template', 'sluice', chartDir, '--kube-version', '1.31.0', '--set', set]);
      expect(result.code, set).not.toBe(0);
      expect(result.stderr, set).toContain('additional properties');
    }
  });

  it('sets region labels, locality routing and external Kafka security in the multi-region values, with a valid gateway file', () => {
    const list = manifests(render('sluice-eu-west-1', ['-f', join(chartDir, 'values-multi-region.yaml')]));
    const worker = byKind(list, 'Deployment').find(
      (d) => d.metadata.name === 'sluice-eu-west-1-batch-worker',
    ) as Manifest;
    expect(worker.metadata.labels?.['sluice.dev/region']).toBe('eu-west-1');
    const env =
      (
        worker.spec as {
          template: { spec: { containers: Array<{ env: Array<{ name: string; value?: string }> }> } };
        }
      ).template.spec.containers[0]?.env ?? [];
    const value = (name: string) => env.find((e) => e.name === name)?.value;
    expect(value('REGION')).toBe('eu-west-1');
    expect(value('KAFKA_TLS')).toBe('true');
    expect(value('KAFKA_SASL_MECHANISM')).toBe('scram-sha-512');
    expect(value('STATE_STORE')).toBe('redis');
    expect(byKind(list, 'ServiceMonitor')).toHaveLength(1);
    const gateway = byKind(list, 'ConfigMap')[0]?.data?.['gateway.yaml'] ?? '';
    const secrets = byKind(list, 'Secret')[0]?.stringData?.['secrets.yaml'] ?? '';
    const { config } = parseGatewayConfig(gateway, 'ConfigMap', { text: secrets, source: 'Secret' });
    expect(config.routes.orders?.upstream.locality).toBe(true);
    expect(config.routes.orders?.upstream.targets.map((t) => t.region)).toContain('eu-west-1');
    void stringify;
  });

  it('gives a second region its own labels and nodes from `region` alone, each label once', () => {
    const list = manifests(
      render('sluice-us-east-1', [
        '-f',
        join(chartDir, 'values-multi-region.yaml'),
        '--set',
        'region=us-east-1',
      ]),
    );
    for (const deployment of byKind(list, 'Deployment')) {
      const template = (
        deployment.spec as {
          template: {
            metadata: { labels: Record<string, string> };
            spec: { nodeSelector: Record<string, string> };
          };
        }
      ).template;
      expect(template.metadata.labels['sluice.dev/region']).toBe('us-east-1');
      expect(template.spec.nodeSelector['topology.kubernetes.io/region']).toBe('us-east-1');
    }
    const plain = manifests(render('sluice', []));
    const [first] = byKind(plain, 'Deployment');
    const pod = (first?.spec as { template: { spec: Record<string, unknown> } } | undefined)?.template.spec;
    expect(pod).toBeDefined();
    expect(pod?.nodeSelector).toBeUndefined();
  });

  it('lets the provisioning Job and the KEDA scaler log in with SASL, and gives the Job its config before it runs', () => {
    const list = manifests(
      render('sluice', [
        '--api-versions',
        'keda.sh/v1alpha1',
        '--set',
        'kafka.sasl.enabled=true',
        '--set',
        'kafka.sasl.username=sluice',
        '--set',
        'kafka.sasl.existingSecret=kafka-login',
        '--set',
        'kafka.tls.enabled=true',
      ]),
    );
    validateAll(list);
    type Hooked = Manifest & { metadata: { annotations?: Record<string, string> } };
    const job = byKind(list, 'Job')[0] as Hooked & {
      spec: {
        template: {
          spec: {
            containers: Array<{ env: Array<{ name: string; value?: string; valueFrom?: unknown }> }>;
            volumes: Array<{ configMap?: { name: string } }>;
          };
        };
      };
    };
    const env = job.spec.template.spec.containers[0]?.env ?? [];
    expect(env.find((e) => e.name === 'KAFKA_SASL_MECHANISM')?.value).toBe('scram-sha-512');
    expect(env.find((e) => e.name === 'KAFKA_SASL_USERNAME')?.value).toBe('sluice');
    expect(env.find((e) => e.name === 'KAFKA_SASL_PASSWORD')?.valueFrom).toEqual({
      secretKeyRef: { name: 'kafka-login', key: 'password' },
    });
    expect(env.find((e) => e.name === 'KAFKA_TLS')?.value).toBe('true');
    // Pre-install hooks run before the release's ordinary objects: the Job's ConfigMap is a hook, created first.
    const mounted = job.spec.template.spec.volumes.find((v) => v.configMap)?.configMap?.name;
    const configMap = byKind(list, 'ConfigMap').find((c) => c.metadata.name === mounted) as Hooked;
    expect(configMap.metadata.annotations?.['helm.sh/hook']).toBe(job.metadata.annotations?.['helm.sh/hook']);
    expect(Number(configMap.metadata.annotations?.['helm.sh/hook-weight'])).toBeLessThan(
      Number(job.metadata.annotations?.['helm.sh/hook-weight']),
    );
    const auth = byKind(list, 'TriggerAuthentication') as Array<
      Manifest & { spec: { secretTargetRef: Array<{ parameter: string; name: string }> } }
    >;
    expect(auth.map((a) => a.metadata.name)).toEqual(['sluice-kafka']);
    expect(auth[0]?.spec.secretTargetRef).toEqual([
      { parameter: 'password', name: 'kafka-login', key: 'password' },
    ]);
    for (const scaled of byKind(list, 'ScaledObject')) {
      for (const trigger of (
        scaled.spec as {
          triggers: Array<{ metadata: Record<string, string>; authenticationRef?: { name: string } }>;
        }
      ).triggers) {
        expect(trigger.metadata).toMatchObject({ sasl: 'scram_sha512', tls: 'enable' });
        expect(trigger.authenticationRef?.name).toBe('sluice-kafka');
      }
    }
  });

  it('takes Redis from a Secret of yours, or a Redis Cluster with its credentials, never a password in the clear', () => {
    const envOf = (args: string[]) => {
      const list = manifests(render('sluice', ['--set', 'state.store=redis', ...args]));
      validateAll(list);
      const ingress = byKind(list, 'Deployment').find(
        (d) => d.metadata.name === 'sluice-ingress',
      ) as Manifest;
      return (
        (
          ingress.spec as {
            template: {
              spec: {
                containers: Array<{ env: Array<{ name: string; value?: string; valueFrom?: unknown }> }>;
              };
            };
          }
        ).template.spec.containers[0]?.env ?? []
      ).filter((e) => e.name.startsWith('REDIS_'));
    };
    expect(envOf(['--set', 'state.redis.existingSecret=redis-login'])).toEqual([
      { name: 'REDIS_URL', valueFrom: { secretKeyRef: { name: 'redis-login', key: 'url' } } },
    ]);
    expect(
      envOf([
        '--set',
        'state.redis.clusterNodes={r-0:6379,r-1:6379}',
        '--set',
        'state.redis.tls=true',
        '--set',
        'state.redis.existingSecret=redis-login',
      ]),
    ).toEqual([
      { name: 'REDIS_CLUSTER_NODES', value: 'r-0:6379,r-1:6379' },
      { name: 'REDIS_TLS', value: 'true' },
      { name: 'REDIS_PASSWORD', valueFrom: { secretKeyRef: { name: 'redis-login', key: 'password' } } },
    ]);
  });

  it('deploys its own Redis only when asked to', () => {
    const deployed = manifests(
      render('sluice', ['--set', 'state.store=redis', '--set', 'state.redis.deploy=true']),
    );
    validateAll(deployed);
    expect(byKind(deployed, 'StatefulSet').map((s) => s.metadata.name)).toEqual(['sluice-redis']);
    const external = helm([
      'template',
      'sluice',
      chartDir,
      '--kube-version',
      '1.31.0',
      '--set',
      'state.store=redis',
    ]);
    expect(external.code).not.toBe(0);
    expect(external.stderr).toContain('state.redis.url, clusterNodes or existingSecret is required');
  });
});
