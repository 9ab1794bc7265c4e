import type { AddressInfo } from 'node:net';
import { type TopicId, topicName, topicSpecifications } from '@sluice/contracts';
import { hashApiKey, parseGatewayConfig } from '@sluice/gateway-config';
import { type ConsumedRecord, createKafkaClient, type KafkaClient, provisionTopics } from '@sluice/kafka';
import { Readiness } from '@sluice/runtime';
import { createRedisStateStore, EmbeddedStateStore, type StateStore, StatusFeed } from '@sluice/state';
import { startTelemetry } from '@sluice/telemetry';
import { uniqueName, waitFor } from '@sluice/testkit';
import { inject } from 'vitest';
import { AcknowledgementBacklog, Admission } from '../src/admission.ts';
import { createApp } from '../src/app.ts';
import { DirectProxy } from '../src/direct.ts';
import { Enqueuer } from '../src/enqueue.ts';
import { activateGateway } from '../src/gateway.ts';
import { createIngressServer, type Shedder } from '../src/http-server.ts';
import { Lookups } from '../src/lookups.ts';
import { IngressMetrics } from '../src/metrics.ts';
import { Redriver } from '../src/redrive.ts';

export const keys = {
  acme: 'sk_test_acme_0123456789',
  globex: 'sk_test_globex_0123456789',
  admin: 'sk_test_admin_0123456789',
  nobody: 'sk_test_nobody_0123456789',
};

export const gatewayYaml = `
version: 1
tenants:
  acme:
    apiKeys: [{ id: acme-test, sha256: ${hashApiKey(keys.acme)} }]
    routes: [echo, readonly]
    webhookSecret: whsec_c2x1aWNlLWRlbW8td2ViaG9vay1zZWNyZXQtYWNtZS0wMDAx
  globex:
    apiKeys: [{ id: globex-test, sha256: ${hashApiKey(keys.globex)} }]
    routes: [echo]
admins:
  apiKeys: [{ id: ops, sha256: ${hashApiKey(keys.admin)} }]
routes:
  echo:
    upstream: { targets: [{ url: "http://127.0.0.1:9/echo" }] }
  readonly:
    methods: [GET]
    upstream: { targets: [{ url: "http://127.0.0.1:9/ro" }] }
  private:
    upstream: { targets: [{ url: "http://127.0.0.1:9/private" }] }
limits:
  maxBodyBytes: 4096
  maxHeaderCount: 30
  maxBatchRequests: 1000
`;

export interface Ingress {
  url: string;
  kafka: KafkaClient;
  prefix: string;
  topic(id: TopicId): string;
  close(): Promise<void>;
}

/** A wait for acknowledgements that the test sets, as SettableQueue sets the lag. */
export class SettableBacklog {
  waitMs = 0;
  oldestWaitMs(): number {
    return this.waitMs;
  }
}

/** A queue whose lag a test sets, standing in for the sampled consumer lag of the batch-workers. */
export class SettableQueue {
  lag: bigint | undefined = undefined;
  current() {
    return { position: Number(this.lag ?? 0n), estimatedMs: this.waitMs };
  }
  /** What a request accepted now would wait for a worker, as the test sets it. */
  waitMs: number | null = 0;
  secondsToDrainTo(_lag: number): number {
    return 7;
  }
  noteAccepted(_count: number): void {
    // The test sets the lag itself.
  }
}

/**
 * The ingress app in this process against the real broker: its own topics (a unique prefix), producer, status
 * feed and store; an HTTP server on a port the OS picks. Two of them on one prefix are two replicas.
 */
export async function startIngress(
  prefix = `${uniqueName('ingress')}.`,
  yaml = gatewayYaml,
  queue = new SettableQueue(),
  /** A Redis store shared by the replicas given the same URL and key prefix, instead of the embedded one. */
  redis?: { url: string; keyPrefix: string },
  /** What admission reads as the wait for Kafka's acknowledgements (the real one unless a test sets it). */
  backlog?: { oldestWaitMs(): number },
  /** The store as status lookups see it (the real one unless a test changes what it answers). */
  lookupStore: (store: StateStore) => StateStore = (store) => store,
  /** What the HTTP server asks before a submission reaches the app; none unless a test gives one. */
  shedder?: Shedder,
): Promise<Ingress> {
  const brokers = inject('kafkaBrokers').split(',');
  const kafka = createKafkaClient('platformatic', { brokers, clientId: uniqueName('ingress-test') });
  const admin = kafka.admin();
  await provisionTopics(admin, topicSpecifications({ prefix, replicationFactor: 1, partitions: 2 }));
  const topic = (id: TopicId) => topicName(id, prefix);
  const embedded = new EmbeddedStateStore({ retentionMs: 3_600_000, maxStatuses: 100_000 });
  embedded.markReady();
  const store: StateStore =
    redis === undefined
      ? embedded
      : await createRedisStateStore({ url: redis.url, keyPrefix: redis.keyPrefix, retentionMs: 3_600_000 });
  const feed = new StatusFeed({ client: kafka, topic: topic('status'), groupId: uniqueName('feed'), store });
  await feed.start();
  const producer = kafka.producer();
  await producer.connect();
  const held = new AbortController();
  // Tests run beside each other on busy cores, where acknowledgements can be slow: unless a test sets its own
  // backpressure, the acknowledgement bound is out of its way (admission.test.ts tests it with its own bound).
  const gateway = activateGateway(
    parseGatewayConfig(
      yaml.includes('backpressure:') ? yaml : `${yaml}backpressure: { maxAcceptWaitMs: 60000 }\n`,
    ),
  );
  const direct = new DirectProxy();
  const telemetry = startTelemetry({ name: 'ingress', version: 'test', instance: 'test', region: 'local' });
  const acknowledgements = new AcknowledgementBacklog();
  const enqueuer = new Enqueuer(
    producer,
    store,
    {
      requests: { high: topic('requestsHigh'), normal: topic('requests'), low: topic('requestsLow') },
      status: topic('status'),
      results: topic('results'),
    },
    { backlog: acknowledgements },
  );
  const app = createApp({
    readiness: new Readiness(),
    admission: new Admission({
      store,
      local: embedded,
      queue,
      kafkaReachable: () => true,
      backlog: backlog ?? acknowledgements,
      onStoreUnavailable: (error) => console.error('state store unavailable', error),
    }),
    gateway: () => gateway,
    enqueuer,
    redriver: new Redriver({
      kafka,
      topic: topic('deadLetters'),
      groupId: () => uniqueName('redrive'),
      store,
      enqueue: (batch) => enqueuer.enqueueUnkeyed(batch),
    }),
    lookups: new Lookups({
      store: lookupStore(store),
      catchUp: (signal) => feed.caughtUp(signal),
      catchUpTimeoutMs: 5_000,
    }),
    queue,
    shutdownSignal: held.signal,
    metrics: new IngressMetrics(telemetry.meter),
    tracer: telemetry.tracer,
    direct,
    metricsHandler: (req, res) => telemetry.metricsHandler(req, res),
    onUnexpectedError: (error) => {
      console.error('unexpected error in the ingress app', error);
    },
  });
  const server = createIngressServer(app, gateway.config.limits.maxHeaderBytes, shedder).listen(
    0,
    '127.0.0.1',
  );
  await new Promise<void>((resolve) => server.once('listening', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    kafka,
    prefix,
    topic,
    close: async () => {
      held.abort();
      direct.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await feed.close();
      if (store !== embedded) await store.close();
      await producer.close();
      await admin.close();
      await telemetry.shutdown();
    },
  };
}

/** Every record of a topic so far (read with a fresh group from the beginning, until the log end). */
export async function readTopic(kafka: KafkaClient, topic: string): Promise<ConsumedRecord[]> {
  const admin = kafka.admin();
  const ranges = await admin.topicOffsets([topic]);
  await admin.close();
  const total = ranges.reduce((sum, r) => sum + Number(r.end - r.start), 0);
  const records: ConsumedRecord[] = [];
  if (total === 0) return records;
  const consumer = kafka.consumer({ groupId: uniqueName('reader'), topics: [topic], fromBeginning: true });
  await consumer.start({
    onBatch: async (batch) => {
      records.push(...batch.records);
    },
  });
  await waitFor(`${total} records on ${topic}`, () => records.length >= total);
  await consumer.close();
  return records;
}

export async function recordCount(kafka: KafkaClient, topic: string): Promise<number> {
  const admin = kafka.admin();
  const ranges = await admin.topicOffsets([topic]);
  await admin.close();
  return ranges.reduce((sum, r) => sum + Number(r.end - r.start), 0);
}

export function call(
  ingress: Ingress,
  path: string,
  init: {
    method?: string;
    key?: string | null;
    json?: unknown;
    body?: string;
    headers?: Record<string, string>;
    signal?: AbortSignal;
  } = {},
): Promise<Response> {
  const headers: Record<string, string> = { ...init.headers };
  if (init.key !== null) headers.authorization = `Bearer ${init.key ?? keys.acme}`;
  let body: string | undefined = init.body;
  if (init.json !== undefined) {
    body = JSON.stringify(init.json);
    headers['content-type'] = 'application/json';
  }
  return fetch(`${ingress.url}${path}`, {
    method: init.method ?? (body ? 'POST' : 'GET'),
    headers,
    ...(body ? { body } : {}),
    ...(init.signal ? { signal: init.signal } : {}),
  });
}
