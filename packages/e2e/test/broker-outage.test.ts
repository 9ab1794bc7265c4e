import { randomUUID } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import {
  type KafkaHandle,
  type RecordingServer,
  type ServiceName,
  ServiceProcess,
  serviceNames,
  startKafka,
  startRecordingServer,
  uniqueName,
  waitFor,
} from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayYaml, tenantKeys } from '../src/harness.ts';
import { ScriptedUpstream } from '../src/upstream.ts';

/**
 * Kafka going away: this file runs its own broker (the run's shared one must stay up for the other files) and
 * kills it, first before the services start and then for 30 s in the middle of a run.
 */
let kafka: KafkaHandle;
let upstream: RecordingServer;
let env: Record<string, string>;
const services = new Map<ServiceName, ServiceProcess>();

beforeAll(async () => {
  kafka = await startKafka({ forceJvm: true });
  upstream = await startRecordingServer(new ScriptedUpstream().handler);
  const dir = await mkdtemp(join(tmpdir(), 'sluice-outage-'));
  const configPath = join(dir, 'gateway.yaml');
  await writeFile(configPath, gatewayYaml(upstream.url));
  env = {
    KAFKA_BROKERS: kafka.bootstrap,
    KAFKA_TOPIC_PREFIX: `${uniqueName('outage')}.`,
    KAFKA_TOPIC_PARTITIONS: '3',
    SLUICE_GATEWAY_CONFIG: configPath,
    LOG_LEVEL: 'warn',
    KAFKA_PROBE_INTERVAL_MS: '500',
    KAFKA_PROBE_TIMEOUT_MS: '1000',
    AGGREGATOR_SWEEP_INTERVAL_MS: '200',
  };
}, 180_000);

afterAll(async () => {
  await Promise.all([...services.values()].map((service) => service.stop('SIGKILL')));
  await upstream?.close();
  await kafka?.stop();
});

const ingressUrl = () => (services.get('ingress') as ServiceProcess).url;
const submit = (path: string) =>
  fetch(`${ingressUrl()}/v1/requests`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tenantKeys.acme}`, 'content-type': 'application/json' },
    body: JSON.stringify({ route: 'e2e', method: 'GET', path }),
    signal: AbortSignal.timeout(20_000),
  });
const readiness = async (service: ServiceProcess) => {
  const response = await fetch(`${service.url}/readyz`, { signal: AbortSignal.timeout(5_000) });
  return { status: response.status, body: (await response.json()) as { checks: Record<string, boolean> } };
};
const statusOf = async (id: string) => {
  const response = await fetch(`${ingressUrl()}/v1/requests/${id}`, {
    headers: { authorization: `Bearer ${tenantKeys.acme}`, prefer: 'wait=5' },
  });
  return response.status === 200 ? ((await response.json()) as { status: string }).status : undefined;
};

/** A refusal while Kafka is away: 503, a problem document, Retry-After, and quickly. */
async function expectRefused(): Promise<void> {
  const started = performance.now();
  const response = await submit(`/ok/${randomUUID()}`);
  expect(response.status).toBe(503);
  expect(response.headers.get('content-type')).toContain('application/problem+json');
  expect(Number(response.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  expect(performance.now() - started).toBeLessThan(15_000);
}

describe('Kafka unreachable', () => {
  it('at start-up: the services come up not ready, the ingress refuses with 503, and all get ready once Kafka answers', async () => {
    await kafka.killBroker(0);
    for (const name of serviceNames) services.set(name, await ServiceProcess.start({ name, env }));
    const ingress = services.get('ingress') as ServiceProcess;
    // Listening comes before anything that needs Kafka; what it waits for is the process loading its modules, which
    // on a busy machine took over 30 s once: the start-up budget of every other service start here (the harness's
    // waitReady), not a bound this test asserts.
    await waitFor(
      'the ingress to listen',
      async () => {
        const response = await fetch(`${ingress.url}/healthz`).catch(() => undefined);
        return response?.status === 200;
      },
      { timeoutMs: 90_000 },
    );
    for (const service of services.values()) {
      const report = await waitFor(`${service.name} to answer /readyz`, () =>
        readiness(service).catch(() => undefined),
      );
      expect(report.status).toBe(503);
      expect(report.body.checks.kafkaReachable).toBe(false);
    }
    await expectRefused();

    await kafka.restartBroker(0);
    const pids = [...services.values()].map((service) => service.pid);
    for (const service of services.values()) await service.waitReady(120_000);
    // Recovered without a restart: the same processes.
    expect([...services.values()].map((service) => service.pid)).toEqual(pids);
    const accepted = await submit(`/ok/${randomUUID()}`);
    expect(accepted.status).toBe(202);
    const { id } = (await accepted.json()) as { id: string };
    await waitFor('the request to succeed', async () => (await statusOf(id)) === 'succeeded', {
      timeoutMs: 60_000,
    });
  });

  it('for 30 s during a run: readiness turns false, the ingress answers 503 with Retry-After, and everything recovers', async () => {
    const before: string[] = [];
    for (let i = 0; i < 40; i += 1) {
      const response = await submit(`/slow/${randomUUID()}/200`);
      expect(response.status).toBe(202);
      before.push(((await response.json()) as { id: string }).id);
    }
    const pids = [...services.values()].map((service) => service.pid);

    await kafka.killBroker(0);
    const outageStarted = Date.now();
    for (const service of services.values()) {
      await waitFor(
        `${service.name} to report not ready`,
        async () => (await readiness(service)).status === 503,
        {
          timeoutMs: 15_000,
        },
      );
    }
    // The outage lasts 30 s (the fault itself, not a wait for something); the ingress refuses throughout.
    let refusals = 0;
    while (Date.now() - outageStarted < 30_000) {
      await expectRefused();
      refusals += 1;
      await delay(1_000);
    }
    expect(refusals).toBeGreaterThanOrEqual(10);

    await kafka.restartBroker(0);
    for (const service of services.values()) await service.waitReady(120_000);
    expect([...services.values()].map((service) => service.pid)).toEqual(pids);
    const after = await submit(`/ok/${randomUUID()}`);
    expect(after.status).toBe(202);
    const ids = [...before, ((await after.json()) as { id: string }).id];
    await waitFor(
      `all ${ids.length} requests accepted around the outage to succeed`,
      async () => {
        for (const id of ids) if ((await statusOf(id)) !== 'succeeded') return false;
        return true;
      },
      { timeoutMs: 120_000, intervalMs: 1_000 },
    );
  });
});
