import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { codecs, type StatusMessage, topicName } from '@sluice/contracts';
import { hashApiKey } from '@sluice/gateway-config';
import { type ConsumedRecord, createKafkaClient, type KafkaClient } from '@sluice/kafka';
import {
  type CallHandler,
  type RecordingServer,
  type ServiceExit,
  type ServiceName,
  ServiceProcess,
  serviceNames,
  startRecordingServer,
  uniqueName,
  waitFor,
} from '@sluice/testkit';

export const tenantKeys = { acme: 'sk_e2e_acme_0123456789', globex: 'sk_e2e_globex_0123456789' };
export const adminKey = 'sk_e2e_admin_0123456789';
export const webhookSecret = 'whsec_c2x1aWNlLWUyZS13ZWJob29rLXNlY3JldC1hY21lLTAwMDE=';

/** Routes a test adds: name → the route's YAML, indented as a value of `routes:` (or made from the upstream's URL). */
export type ExtraRoutes = Record<string, string | ((upstream: string) => string)>;

/**
 * These tests run beside each other on two busy cores, where Kafka's acknowledgements can take seconds; they test
 * what happens to accepted requests, not the shedding of a slow broker or a replica past its capacity
 * (services/ingress/test/admission.test.ts and overload.test.ts do), so those bounds are raised out of their way.
 */
export const slowAcknowledgementsAllowed =
  'backpressure: { maxAcceptWaitMs: 60000, maxEventLoopDelayMs: 60000, maxSubmissionsInFlight: 1000000, maxQueueWaitMs: 3600000 }\n';

/**
 * The gateway file of the end-to-end tests. `extraRoutes` adds routes of acme's, e.g. one whose target is another
 * server, or one with other limits.
 */
export function gatewayYaml(upstream: string, extra = '', extraRoutes: ExtraRoutes = {}): string {
  const routeNames = ['e2e', 'e2e-slow', 'e2e-fragile', ...Object.keys(extraRoutes)];
  const routeBlocks = Object.entries(extraRoutes).map(
    ([name, body]) => `  ${name}:\n${typeof body === 'function' ? body(upstream) : body}`,
  );
  return `
version: 1
admins:
  apiKeys: [{ id: ops-e2e, sha256: ${hashApiKey(adminKey)} }]
tenants:
  acme:
    apiKeys: [{ id: acme-e2e, sha256: ${hashApiKey(tenantKeys.acme)} }]
    routes: [${routeNames.join(', ')}]
    webhookSecret: ${webhookSecret}
    resultTopic: true
  globex:
    apiKeys: [{ id: globex-e2e, sha256: ${hashApiKey(tenantKeys.globex)} }]
    routes: [e2e]
routes:
  e2e:
    # One target serves every scenario, failing ones included: its health must not trip on their 5xx.
    upstream:
      targets: [{ url: "${upstream}/up" }]
      circuitBreaker: { failureThreshold: 100000 }
      outlierDetection: { consecutiveFailures: 100000 }
    timeoutMs: 5000
    concurrency: 64
    retry: { maxAttempts: 4, baseDelayMs: 50, maxDelayMs: 200 }
  e2e-slow:
    # Its scenarios never answer the tries meant to time out (/hang, /lag) and answer the others at once: the
    # timeout is only the margin a busy test machine needs to deliver an immediate answer.
    upstream:
      targets: [{ url: "${upstream}/up" }]
      circuitBreaker: { failureThreshold: 100000 }
      outlierDetection: { consecutiveFailures: 100000 }
    timeoutMs: 2000
    retry: { maxAttempts: 2, baseDelayMs: 50, maxDelayMs: 100 }
  e2e-fragile:
    # A target of its own, with a breaker that opens fast: the scenario of an upstream going down.
    upstream:
      targets: [{ url: "${upstream}/fragile" }]
      circuitBreaker: { failureThreshold: 3, openMs: 500 }
      outlierDetection: { consecutiveFailures: 100000 }
    retry: { maxAttempts: 10, baseDelayMs: 50, maxDelayMs: 100 }
${routeBlocks.join('\n')}
callbacks:
  allowPrivateNetworks: true
${extra.includes('backpressure:') ? '' : slowAcknowledgementsAllowed}${extra}`;
}

export interface Stack {
  prefix: string;
  kafka: KafkaClient;
  upstream: RecordingServer;
  receiver: RecordingServer;
  services: Record<ServiceName, ServiceProcess>;
  ingress: string;
  /** Stops one service (SIGTERM unless told) and starts a new process of it with the same settings. */
  restart(name: ServiceName, signal?: NodeJS.Signals): Promise<void>;
  stopService(name: ServiceName, signal?: NodeJS.Signals): Promise<void>;
  startService(name: ServiceName): Promise<void>;
  /** Starts one more instance of a service with the same settings (scale-out); stopped with the stack. */
  spawn(name: ServiceName): Promise<ServiceProcess>;
  /** Every instance of a service: index 0 is the one the stack started, then those of spawn() in order. */
  instances(name: ServiceName): ServiceProcess[];
  /** Signals one instance (SIGKILL unless told: a crash) and waits for the process to end. */
  kill(name: ServiceName, signal?: NodeJS.Signals, index?: number): Promise<ServiceExit>;
  /** Starts a new process in the place of a stopped instance, with the same settings, and waits until ready. */
  revive(name: ServiceName, index?: number): Promise<ServiceProcess>;
  topic(id: Parameters<typeof topicName>[0]): string;
  stop(): Promise<void>;
}

/**
 * The whole system as its clients meet it: an upstream and a webhook receiver (real HTTP servers), a gateway
 * file pointing at them, and the four services as separate processes on the run's broker, on topics of their
 * own (a unique prefix).
 */
export interface StackOptions {
  /** The Kafka bootstrap addresses (the run's broker unless a test brings its own). */
  brokers: string;
  /** How the upstream answers. */
  upstream: CallHandler;
  /** Environment added to (or overriding) the services' common settings. */
  env?: Record<string, string>;
  /** Top-level gateway file settings added to the common ones (e.g. backpressure bounds). */
  gatewayYaml?: string;
  /** Routes added to the common ones (see gatewayYaml). */
  routes?: ExtraRoutes;
  /** Options for node itself per service (e.g. `--cpu-prof` for `pnpm profile`). */
  nodeArgs?: Partial<Record<ServiceName, string[]>>;
}

export async function startStack(options: StackOptions): Promise<Stack> {
  const {
    brokers,
    upstream: upstreamHandler,
    env: extraEnv = {},
    gatewayYaml: extraGatewayYaml = '',
  } = options;
  const extraRoutes = options.routes ?? {};
  const prefix = `${uniqueName('e2e')}.`;
  const upstream = await startRecordingServer(upstreamHandler);
  const receiver = await startRecordingServer((_call, res) => {
    res.writeHead(204);
    res.end();
  });
  const dir = await mkdtemp(join(tmpdir(), 'sluice-e2e-'));
  const configPath = join(dir, 'gateway.yaml');
  await writeFile(configPath, gatewayYaml(upstream.url, extraGatewayYaml, extraRoutes));
  const env: Record<string, string> = {
    KAFKA_BROKERS: brokers,
    KAFKA_TOPIC_PREFIX: prefix,
    KAFKA_TOPIC_PARTITIONS: '3',
    SLUICE_GATEWAY_CONFIG: configPath,
    LOG_LEVEL: 'warn',
    DRAIN_TIMEOUT_MS: '2000',
    AGGREGATOR_SWEEP_INTERVAL_MS: '200',
    WEBHOOK_BASE_DELAY_MS: '100',
    WEBHOOK_MAX_DELAY_MS: '500',
    QUEUE_STATS_INTERVAL_MS: '500',
    ...extraEnv,
  };
  const services = {} as Record<ServiceName, ServiceProcess>;
  const startService = async (name: ServiceName) => {
    const service = await ServiceProcess.start({ name, env, nodeArgs: options.nodeArgs?.[name] ?? [] });
    services[name] = service;
    await service.waitReady(90_000);
  };
  const kafka = createKafkaClient('platformatic', {
    brokers: brokers.split(','),
    clientId: uniqueName('e2e-client'),
  });
  try {
    for (const name of serviceNames) await startService(name);
  } catch (error) {
    await Promise.all(Object.values(services).map((service) => service.stop('SIGKILL')));
    throw error;
  }
  const extra: ServiceProcess[] = [];
  const instances = (name: ServiceName) => [
    services[name],
    ...extra.filter((service) => service.name === name),
  ];
  const instance = (name: ServiceName, index: number) => {
    const found = instances(name)[index];
    if (found === undefined) throw new Error(`no instance ${index} of ${name}`);
    return found;
  };
  const stopService = async (name: ServiceName, signal: NodeJS.Signals = 'SIGTERM') => {
    const exit = await services[name].stop(signal);
    if (signal === 'SIGTERM' && exit.code !== 0) {
      throw new Error(`${name} exited ${exit.code} on SIGTERM:\n${services[name].output().slice(-4000)}`);
    }
  };
  return {
    prefix,
    kafka,
    upstream,
    receiver,
    services,
    get ingress() {
      return services.ingress.url;
    },
    restart: async (name, signal) => {
      await stopService(name, signal);
      await startService(name);
    },
    stopService,
    startService,
    spawn: async (name) => {
      const service = await ServiceProcess.start({ name, env });
      extra.push(service);
      await service.waitReady(90_000);
      return service;
    },
    instances,
    kill: async (name, signal = 'SIGKILL', index = 0) => await instance(name, index).stop(signal),
    revive: async (name, index = 0) => {
      const old = instance(name, index);
      if (old.running) throw new Error(`instance ${index} of ${name} is still running`);
      if (index === 0) {
        await startService(name);
        return services[name];
      }
      const service = await ServiceProcess.start({ name, env });
      extra[extra.indexOf(old)] = service;
      await service.waitReady(90_000);
      return service;
    },
    topic: (id) => topicName(id, prefix),
    stop: async () => {
      await Promise.all([...Object.values(services), ...extra].map((service) => service.stop('SIGTERM')));
      await upstream.close();
      await receiver.close();
    },
  };
}

export async function api(
  stack: Stack,
  path: string,
  init: {
    method?: string;
    json?: unknown;
    headers?: Record<string, string>;
    key?: string;
    body?: string;
  } = {},
): Promise<Response> {
  const headers: Record<string, string> = {
    authorization: `Bearer ${init.key ?? tenantKeys.acme}`,
    ...init.headers,
  };
  let body = init.body;
  if (init.json !== undefined) {
    body = JSON.stringify(init.json);
    headers['content-type'] = 'application/json';
  }
  return await fetch(`${stack.ingress}${path}`, {
    method: init.method ?? (body === undefined ? 'GET' : 'POST'),
    headers,
    ...(body !== undefined ? { body } : {}),
  });
}

export interface StatusDocument {
  id: string;
  batchId: string;
  status: string;
  attempts: number;
  result?: { status: number; headers: Record<string, string>; body?: string; bodyBase64?: string };
  error?: { code: string; message: string };
  timings: { acceptedAt: string; startedAt?: string; finishedAt?: string };
}

export async function statusOf(stack: Stack, id: string, wait?: number): Promise<StatusDocument> {
  const response = await api(
    stack,
    `/v1/requests/${id}`,
    wait ? { headers: { prefer: `wait=${wait}` } } : {},
  );
  if (response.status !== 200) throw new Error(`GET /v1/requests/${id} answered ${response.status}`);
  return (await response.json()) as StatusDocument;
}

export async function terminalStatusOf(
  stack: Stack,
  id: string,
  timeoutMs = 60_000,
): Promise<StatusDocument> {
  return await waitFor(
    `request ${id} to be terminal`,
    async () => {
      const status = await statusOf(stack, id, 5);
      return ['succeeded', 'failed', 'expired', 'dead'].includes(status.status) ? status : undefined;
    },
    { timeoutMs, intervalMs: 10 },
  );
}

/** Every record of a topic so far, read with a group of its own from the beginning to the log end. */
export async function readTopic(kafka: KafkaClient, topic: string): Promise<ConsumedRecord[]> {
  const admin = kafka.admin();
  const ranges = await admin.topicOffsets([topic]);
  await admin.close();
  const total = ranges.reduce((sum, range) => sum + Number(range.end - range.start), 0);
  const records: ConsumedRecord[] = [];
  if (total === 0) return records;
  const consumer = kafka.consumer({
    groupId: uniqueName('e2e-reader'),
    topics: [topic],
    fromBeginning: true,
  });
  await consumer.start({
    onBatch: async (batch) => {
      records.push(...batch.records);
    },
  });
  await waitFor(`${total} records on ${topic}`, () => records.length >= total, { timeoutMs: 60_000 });
  await consumer.close();
  return records;
}

/**
 * Every status record written per request id, in log order: the audit behind "exactly one terminal status". An
 * unreadable record fails, unless the test put such records there itself (`skipUnreadable`).
 */
export async function statusHistory(
  stack: Stack,
  { skipUnreadable = false } = {},
): Promise<Map<string, StatusMessage[]>> {
  const history = new Map<string, StatusMessage[]>();
  for (const record of await readTopic(stack.kafka, stack.topic('status'))) {
    const decoded = codecs.status.decode(record);
    if (!decoded.ok && skipUnreadable) continue;
    if (!decoded.ok) throw new Error(`unreadable status record: ${decoded.detail}`);
    const list = history.get(decoded.value.id) ?? [];
    list.push(decoded.value);
    history.set(decoded.value.id, list);
  }
  return history;
}
