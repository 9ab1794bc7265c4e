import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { ROOT_CONTEXT, SpanKind } from '@opentelemetry/api';
import { kafkaConnectionFrom, type ServiceEnv } from '@sluice/config';
import {
  type consumerGroups,
  groupName,
  recordHeaders,
  type TopicId,
  tableReaderGroupName,
  topicName,
  topicSpecifications,
} from '@sluice/contracts';
import {
  type Admin,
  type ConsumedRecord,
  createKafkaClient,
  type KafkaClient,
  type PartitionLag,
  type Producer,
  provisionTopics,
  RecordProcessor,
  type TopicPartition,
} from '@sluice/kafka';
import { contextFrom, inSpan, startTelemetry, type Telemetry, traceHeaders } from '@sluice/telemetry';
import pRetry from 'p-retry';
import { BrokerProbe } from './broker-probe.ts';
import { createHealthServer, type ExtraRoute, Readiness } from './health.ts';
import { createLogger, type Logger } from './logger.ts';
import { Shutdown } from './shutdown.ts';

export interface ServiceContext {
  name: string;
  /** Metrics (and, later, traces) of this service; shut down last. */
  telemetry: Telemetry;
  /** This process's identity in logs, client ids and the groups of its tables. */
  instance: string;
  env: ServiceEnv;
  logger: Logger;
  kafka: KafkaClient;
  readiness: Readiness;
  shutdown: Shutdown;
  /** The deployment's name for a declared topic (prefix applied). */
  topic(id: TopicId): string;
  /** A group of this process alone for reading a table (a whole compacted topic); unique per start. */
  tableGroup(table: string): string;
  /**
   * Marks start-up complete. Until then /readyz answers 503 even when every check added so far passes, because
   * checks of later start-up steps (a second consumer, say) are not added yet.
   */
  markStarted(): void;
  /** Whether the Kafka cluster answered the last probe (see BrokerProbe); false until it first does. */
  kafkaReachable(): boolean;
}

/**
 * The first steps of every service: logger, Kafka client, readiness, ordered shutdown on SIGTERM/SIGINT.
 * Returned to the service's main.ts, which adds its own clients and steps in start-up order.
 */
export function createServiceContext(name: string, env: ServiceEnv): ServiceContext {
  const instance = env.SERVICE_INSTANCE_ID ?? `${name}-${process.pid}`;
  const logger = createLogger(name, env.LOG_LEVEL, instance);
  const kafka = createKafkaClient(env.KAFKA_CLIENT, kafkaConnectionFrom(env, instance));
  const telemetry = startTelemetry(
    { name, version: env.SERVICE_VERSION, instance, region: env.REGION },
    {
      otlpEndpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT,
      sampleRatio: env.TRACES_SAMPLE_RATIO,
      exportDelayMs: env.TRACES_EXPORT_DELAY_MS,
    },
    (error) => logger.warn({ err: error }, 'telemetry failed; the service runs on without it'),
  );
  const readiness = new Readiness();
  let started = false;
  readiness.add({ name: 'startupComplete', ready: () => started });
  const shutdown = new Shutdown({ logger, timeoutMs: env.SHUTDOWN_TIMEOUT_MS });
  shutdown.add('intake', 'readiness off', async () => readiness.markShuttingDown());
  const probeAdmin = kafka.admin();
  const probe = new BrokerProbe({
    admin: probeAdmin,
    topic: topicName('status', env.KAFKA_TOPIC_PREFIX),
    intervalMs: env.KAFKA_PROBE_INTERVAL_MS,
    timeoutMs: env.KAFKA_PROBE_TIMEOUT_MS,
    onChange: (reachable, error) => {
      if (reachable) logger.info('Kafka answers');
      else logger.warn({ err: error }, 'Kafka does not answer');
    },
  });
  probe.start();
  readiness.add({ name: 'kafkaReachable', ready: () => probe.reachable });
  shutdown.add('close', 'stop probing Kafka', async () => {
    probe.stop();
    await probeAdmin.close();
  });
  shutdown.add('telemetry', 'flush and stop telemetry', () => telemetry.shutdown());
  return {
    name,
    telemetry,
    instance,
    env,
    logger,
    kafka,
    readiness,
    shutdown,
    topic: (id) => topicName(id, env.KAFKA_TOPIC_PREFIX),
    markStarted: () => {
      started = true;
      logger.info('ready');
    },
    kafkaReachable: () => probe.reachable,
    tableGroup: (table) =>
      tableReaderGroupName(table, `${instance}.${randomBytes(4).toString('hex')}`, env.KAFKA_TOPIC_PREFIX),
  };
}

/**
 * Retries a start-up step with exponential backoff and jitter until it succeeds or shutdown begins: a broker
 * that is not reachable yet delays readiness instead of crashing the pod into a restart loop.
 */
export async function untilReady<T>(ctx: ServiceContext, what: string, step: () => Promise<T>): Promise<T> {
  const abort = new AbortController();
  ctx.shutdown.add('intake', `abort ${what}`, async () => abort.abort());
  return await pRetry(step, {
    retries: Number.POSITIVE_INFINITY,
    minTimeout: 200,
    maxTimeout: 5_000,
    randomize: true,
    signal: abort.signal,
    onFailedAttempt: ({ error, attemptNumber, retryDelay }) => {
      ctx.logger.warn(
        { err: error, attempt: attemptNumber, retryInMs: retryDelay },
        `${what} failed; retrying`,
      );
    },
  });
}

/** Closes an HTTP server, ending idle keep-alive connections so that it does not wait for clients. */
export async function closeServer(server: Server): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()));
    server.closeIdleConnections();
  });
}

/** Creates missing topics and logs drift, when the deployment allows it. */
export async function provisionIfAllowed(ctx: ServiceContext): Promise<void> {
  if (!ctx.env.KAFKA_PROVISION_TOPICS) return;
  const admin = ctx.kafka.admin();
  try {
    await untilReady(ctx, 'provisioning topics', () => provisionWith(ctx, admin));
  } finally {
    await admin.close();
  }
}

async function provisionWith(ctx: ServiceContext, admin: Admin): Promise<void> {
  const report = await provisionTopics(
    admin,
    topicSpecifications({
      prefix: ctx.env.KAFKA_TOPIC_PREFIX,
      replicationFactor: ctx.env.KAFKA_REPLICATION_FACTOR,
      ...(ctx.env.KAFKA_TOPIC_PARTITIONS !== undefined ? { partitions: ctx.env.KAFKA_TOPIC_PARTITIONS } : {}),
    }),
  );
  if (report.created.length > 0) ctx.logger.info({ topics: report.created }, 'created topics');
  for (const mismatch of report.mismatches) ctx.logger.warn(mismatch, 'topic differs from its declaration');
}

/** Starts the operational HTTP server (/healthz, /readyz) and closes it last but one at shutdown. */
export async function listenHealth(ctx: ServiceContext, extraRoutes: ExtraRoute[] = []): Promise<Server> {
  const metrics: ExtraRoute = (req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') return false;
    ctx.telemetry.metricsHandler(req, res);
    return true;
  };
  const server = createHealthServer(ctx.readiness, [metrics, ...extraRoutes]);
  await new Promise<void>((resolve) => server.listen(ctx.env.HTTP_PORT, ctx.env.HTTP_HOST, resolve));
  ctx.logger.info({ address: server.address() }, 'listening');
  ctx.shutdown.add('close', 'close health server', () => closeServer(server));
  return server;
}

export interface ConsumerSpec {
  group: keyof typeof consumerGroups;
  topics: TopicId[];
  maxInFlight: number;
  handle(record: ConsumedRecord, signal: AbortSignal): Promise<void>;
  orderingKey?(record: ConsumedRecord): string | undefined;
  commitIntervalMs?: number;
  /** Called when partitions are handed to this instance, before their records are handled. */
  onAssigned?(partitions: TopicPartition[]): void;
  /** Called when partitions are taken away (after their finished records were committed). */
  onRevoked?(partitions: TopicPartition[]): void;
}

/**
 * Runs a consumer group through a RecordProcessor, readiness tied to group membership, and registers the
 * graceful stop (drain, commit the finished prefix, leave the group) as a shutdown step.
 */
export async function startConsumer(ctx: ServiceContext, spec: ConsumerSpec): Promise<RecordProcessor> {
  const groupId = groupName(spec.group, ctx.env.KAFKA_TOPIC_PREFIX);
  const consumer = ctx.kafka.consumer({
    groupId,
    topics: spec.topics.map((id) => ctx.topic(id)),
    fromBeginning: true,
    partitionConcurrency: 4,
  });
  const handle = tracedHandler(ctx, groupId, spec.handle);
  const processor = new RecordProcessor({
    consumer,
    maxInFlight: spec.maxInFlight,
    handle,
    ...(spec.orderingKey ? { orderingKey: spec.orderingKey } : {}),
    ...(spec.commitIntervalMs !== undefined ? { commitIntervalMs: spec.commitIntervalMs } : {}),
    ...(spec.onAssigned ? { onAssigned: spec.onAssigned } : {}),
    ...(spec.onRevoked ? { onRevoked: spec.onRevoked } : {}),
    onError: (error, record, attempt) =>
      ctx.logger.error(
        {
          err: error,
          topic: record.topic,
          partition: record.partition,
          offset: String(record.offset),
          attempt,
        },
        'record handler failed; it will be handled again',
      ),
  });
  ctx.readiness.add({ name: 'consumerGroupJoined', ready: () => consumer.isJoined() });
  ctx.shutdown.add('drain', 'drain and commit consumer', async () => {
    const { abandoned } = await processor.stop(ctx.env.DRAIN_TIMEOUT_MS);
    if (abandoned > 0) ctx.logger.warn({ abandoned }, 'records left unfinished for redelivery');
  });
  await untilReady(ctx, 'joining consumer group', () => processor.start());
  observeConsumer(
    ctx,
    groupId,
    spec.topics.map((id) => ctx.topic(id)),
    processor,
  );
  return processor;
}

/**
 * A consumer's handler inside a CONSUMER span per record (OpenTelemetry messaging conventions), child of the
 * context the record carries: one trace follows a request across the services.
 */
function tracedHandler(
  ctx: ServiceContext,
  groupId: string,
  handle: ConsumerSpec['handle'],
): ConsumerSpec['handle'] {
  return (record, signal) =>
    inSpan(
      ctx.telemetry.tracer,
      `process ${record.topic}`,
      {
        kind: SpanKind.CONSUMER,
        parent: contextFrom(record.headers, ROOT_CONTEXT),
        attributes: {
          'messaging.system': 'kafka',
          'messaging.operation.type': 'process',
          'messaging.destination.name': record.topic,
          'messaging.destination.partition.id': String(record.partition),
          'messaging.kafka.offset': Number(record.offset),
          'messaging.consumer.group.name': groupId,
          ...(record.headers[recordHeaders.requestId] !== undefined
            ? { 'sluice.request_id': record.headers[recordHeaders.requestId] }
            : {}),
          ...(record.headers[recordHeaders.batchId] !== undefined
            ? { 'sluice.batch_id': record.headers[recordHeaders.batchId] }
            : {}),
        },
      },
      () => handle(record, signal),
    );
}

/** Records in flight and the group's lag per partition, as metrics. */
function observeConsumer(
  ctx: ServiceContext,
  groupId: string,
  topics: string[],
  processor: RecordProcessor,
): void {
  const admin = ctx.kafka.admin();
  let lags: PartitionLag[] = [];
  const sample = async () => {
    try {
      lags = await admin.groupLag(groupId, topics);
    } catch (error) {
      ctx.logger.debug({ err: error }, 'sampling consumer lag failed');
    }
  };
  void sample();
  const timer = setInterval(() => void sample(), 5_000);
  timer.unref();
  ctx.shutdown.add('close', `stop lag sampling of ${groupId}`, async () => {
    clearInterval(timer);
    await admin.close();
  });
  const group = { 'messaging.consumer.group.name': groupId };
  ctx.telemetry.meter
    .createObservableGauge('sluice.consumer.lag', {
      unit: '{message}',
      description: 'Records of a partition not yet committed by the group.',
    })
    .addCallback((result) => {
      for (const lag of lags) {
        result.observe(Number(lag.lag), {
          ...group,
          'messaging.destination.name': lag.topic,
          'messaging.destination.partition.id': String(lag.partition),
        });
      }
    });
  ctx.telemetry.meter
    .createObservableGauge('sluice.consumer.records.in_flight', {
      unit: '{message}',
      description: 'Records handed to the handler and not finished yet.',
    })
    .addCallback((result) => result.observe(processor.inFlight, group));
}

/**
 * Wraps a producer so that every send is a PRODUCER span and every record carries W3C trace context: its own when
 * the caller set one (the trace of the request the record belongs to), else the send's.
 */
export function tracedProducer(ctx: ServiceContext, producer: Producer): Producer {
  return {
    connect: () => producer.connect(),
    close: () => producer.close(),
    send: (records) => {
      const topics = [...new Set(records.map((record) => record.topic))];
      return inSpan(
        ctx.telemetry.tracer,
        `send ${topics.join(' ')}`,
        {
          kind: SpanKind.PRODUCER,
          attributes: {
            'messaging.system': 'kafka',
            'messaging.operation.type': 'send',
            'messaging.destination.name': topics.join(','),
            'messaging.batch.message_count': records.length,
          },
        },
        async () => {
          const carried = traceHeaders();
          await producer.send(
            records.map((record) =>
              record.headers?.[recordHeaders.traceparent] !== undefined
                ? record
                : { ...record, headers: { ...record.headers, ...carried } },
            ),
          );
        },
      );
    },
  };
}

/**
 * Connects a producer (a new one unless given: a service may hand its producer to its app before connecting) and
 * registers the flush of its queued records as a shutdown step.
 */
export async function startProducer(
  ctx: ServiceContext,
  producer: Producer = tracedProducer(ctx, ctx.kafka.producer()),
): Promise<Producer> {
  let connected = false;
  ctx.readiness.add({ name: 'kafkaProducerConnected', ready: () => connected });
  await untilReady(ctx, 'connecting producer', () => producer.connect());
  connected = true;
  ctx.shutdown.add('flush', 'flush and close producer', () => producer.close());
  return producer;
}
