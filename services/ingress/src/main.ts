import { groupName, laneTopics, statusStoreGroupName } from '@sluice/contracts';
import {
  closeServer,
  createServiceContext,
  provisionIfAllowed,
  runMain,
  startProducer,
  tracedProducer,
  untilReady,
  watchGatewayConfig,
} from '@sluice/runtime';
import { StatusFeed } from '@sluice/state';
import { AcknowledgementBacklog, Admission } from './admission.ts';
import { createApp } from './app.ts';
import { loadConfig } from './config.ts';
import { DirectProxy } from './direct.ts';
import { Enqueuer } from './enqueue.ts';
import { activateGateway } from './gateway.ts';
import { createIngressServer } from './http-server.ts';
import { Lookups } from './lookups.ts';
import { IngressMetrics } from './metrics.ts';
import { OverloadShedder } from './overload.ts';
import { QueueStats } from './queue-stats.ts';
import { Redriver } from './redrive.ts';
import { openState } from './state.ts';

runMain('ingress', async () => {
  const env = loadConfig(process.env);
  const ctx = createServiceContext('ingress', env);
  ctx.shutdown.listen();
  const watcher = await watchGatewayConfig(ctx, env);
  let gateway = activateGateway(watcher.current());
  // The authenticator and limits follow the file; rebuilt once per applied version, not per request.
  const currentGateway = () => {
    const loaded = watcher.current();
    if (loaded.version !== gateway.version) gateway = activateGateway(loaded);
    return gateway;
  };
  const direct = new DirectProxy({ locality: { region: env.REGION, zone: env.ZONE } });
  ctx.shutdown.add('close', 'close direct-mode connections', async () => direct.close());

  const prefix = env.KAFKA_TOPIC_PREFIX;
  const state = openState(env, (error) => ctx.logger.warn({ err: error }, 'state store error'));
  const store = state.store;
  ctx.readiness.info('stateStore', () => `${store.kind}${store.ready() ? '' : ' (not answering)'}`);
  const metrics = new IngressMetrics(ctx.telemetry.meter);
  // The embedded store is this process's memory: each replica reads the whole status topic into its own. Replicas
  // on one Redis share a group instead, so that each status is written once however many replicas there are; a
  // Redis that restarted empty is filled again by one full read (applying a status twice changes nothing).
  const feedOptions = {
    client: ctx.kafka,
    topic: ctx.topic('status'),
    store,
    onApplied: (count: number) => metrics.noteStatusesApplied(count),
    onInvalid: (detail: string) => ctx.logger.error({ detail }, 'unreadable record on the status topic'),
    onError: (error: unknown) =>
      ctx.logger.warn({ err: error }, 'the state store did not take statuses; retrying'),
  };
  const fullRead = () => new StatusFeed({ ...feedOptions, groupId: ctx.tableGroup('status') });
  const shared = env.STATE_STORE === 'redis' && env.STATUS_FEED === 'shared';
  const newFeed = shared
    ? () =>
        new StatusFeed({
          ...feedOptions,
          mode: 'shared',
          groupId: statusStoreGroupName(`${env.REGION}.${env.REDIS_KEY_PREFIX}`, prefix),
        })
    : fullRead;
  let feed = newFeed();
  const producer = tracedProducer(ctx, ctx.kafka.producer());
  const admin = ctx.kafka.admin();
  const queue = new QueueStats(
    () =>
      admin.groupLag(
        groupName('batchWorker', prefix),
        Object.values(laneTopics).map((id) => ctx.topic(id)),
      ),
    env.QUEUE_STATS_INTERVAL_MS,
    (error) => ctx.logger.warn({ err: error }, 'sampling queue lag failed'),
  );
  const held = new AbortController();
  // How long submissions have waited for Kafka's acknowledgement: admission refuses at once while it is long.
  const backlog = new AcknowledgementBacklog();
  const enqueuer = new Enqueuer(
    producer,
    store,
    {
      requests: {
        high: ctx.topic(laneTopics.high),
        normal: ctx.topic(laneTopics.normal),
        low: ctx.topic(laneTopics.low),
      },
      status: ctx.topic('status'),
      results: ctx.topic('results'),
    },
    {
      onStoreError: (error) =>
        ctx.logger.warn({ err: error }, 'the state store did not answer; the request goes on'),
      onUnarbitrated: () => metrics.noteUnarbitrated(),
      backlog,
    },
  );
  const app = createApp({
    readiness: ctx.readiness,
    admission: new Admission({
      store,
      local: state.local,
      queue,
      kafkaReachable: () => ctx.kafkaReachable(),
      backlog,
      onStoreUnavailable: (error) =>
        ctx.logger.warn({ err: error }, 'state store unavailable: rate limits are per replica meanwhile'),
    }),
    gateway: currentGateway,
    direct,
    enqueuer,
    redriver: new Redriver({
      kafka: ctx.kafka,
      topic: ctx.topic('deadLetters'),
      groupId: () => ctx.tableGroup('redrive'),
      store,
      enqueue: (batch) => enqueuer.enqueueUnkeyed(batch),
    }),
    lookups: new Lookups({
      store,
      catchUp: (signal) => feed.caughtUp(signal),
      catchUpTimeoutMs: env.LOOKUP_CATCH_UP_MS,
    }),
    queue,
    shutdownSignal: held.signal,
    metrics,
    tracer: ctx.telemetry.tracer,
    metricsHandler: (req, res) => ctx.telemetry.metricsHandler(req, res),
    onUnexpectedError: (error) => ctx.logger.error({ err: error }, 'unexpected error answering a request'),
    accessLog: { write: (line) => ctx.logger.info(line, 'request'), sampleEvery: env.LOG_SAMPLE_EVERY },
  });

  // Listen first so that /healthz answers while Kafka is still being reached; /readyz says when to send traffic.
  const shedder = new OverloadShedder({
    boundMs: () => currentGateway().config.backpressure.maxEventLoopDelayMs,
    maxInFlight: () => currentGateway().config.backpressure.maxSubmissionsInFlight,
  });
  shedder.start();
  metrics.observeShedder(() => shedder.state);
  const server = createIngressServer(app, gateway.config.limits.maxHeaderBytes, shedder);
  server.listen({ port: env.HTTP_PORT, host: env.HTTP_HOST, backlog: env.HTTP_LISTEN_BACKLOG });
  await new Promise<void>((resolve, reject) => server.once('listening', resolve).once('error', reject));
  ctx.logger.info({ address: server.address() }, 'listening');
  ctx.shutdown.add('intake', 'answer held requests', async () => held.abort());
  ctx.shutdown.add('intake', 'close HTTP server', () => closeServer(server));
  ctx.shutdown.add('close', 'stop queue sampling', async () => queue.stop());
  ctx.shutdown.add('close', 'stop measuring the event loop', async () => shedder.stop());
  ctx.shutdown.add('close', 'close status feed', () => feed.close());
  ctx.shutdown.add('close', 'close the state store', () => state.close());
  ctx.shutdown.add('close', 'close admin client', () => admin.close());

  await provisionIfAllowed(ctx);
  await startProducer(ctx, producer);
  ctx.readiness.add({ name: 'statusStore', ready: () => state.ready() && feed.isJoined() });
  await untilReady(ctx, 'loading statuses', () => feed.start());
  state.loaded();
  state.watchForDataLoss(async () => {
    ctx.logger.warn('the state store lost its data; filling it again from the status topic');
    const refill = fullRead();
    await refill.start();
    if (shared) {
      await refill.close();
    } else {
      const previous = feed;
      feed = refill;
      await previous.close();
    }
    ctx.logger.info('the state store is filled again');
  }, 2_000);
  await queue.start();
  ctx.markStarted();
});
