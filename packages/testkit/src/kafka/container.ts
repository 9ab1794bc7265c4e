import { request } from 'node:http';
import { GenericContainer, type StartedTestContainer, Wait } from 'testcontainers';
import { freePort } from '../net.ts';
import { kafkaVersion } from './jvm.ts';
import type { KafkaHandle } from './types.ts';

/**
 * Whether a Docker engine answers on DOCKER_HOST or the default socket. Checked with a 1 s ping so that machines
 * without Docker fall through to the JVM path at once.
 */
export async function dockerAnswers(env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  const host = env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
  const target = host.startsWith('unix://')
    ? { socketPath: host.slice('unix://'.length) }
    : (() => {
        const url = new URL(host.replace(/^tcp:/, 'http:'));
        return { host: url.hostname, port: Number(url.port || 2375) };
      })();
  return await new Promise((resolve) => {
    const req = request({ ...target, path: '/_ping', method: 'GET', timeout: 1_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/**
 * A single KRaft broker in the `apache/kafka` image. @testcontainers/kafka's KafkaContainer drives Confluent
 * images only, so this uses testcontainers' GenericContainer with the image's own KAFKA_* settings. The host
 * port equals the container port so that the advertised listener is the address clients dial.
 */
export async function startKafkaContainer(): Promise<KafkaHandle> {
  const port = await freePort();
  const container: StartedTestContainer = await new GenericContainer(`apache/kafka:${kafkaVersion}`)
    .withExposedPorts({ container: port, host: port })
    .withEnvironment({
      KAFKA_NODE_ID: '1',
      KAFKA_PROCESS_ROLES: 'broker,controller',
      KAFKA_LISTENERS: `PLAINTEXT://0.0.0.0:${port},CONTROLLER://0.0.0.0:9093`,
      KAFKA_ADVERTISED_LISTENERS: `PLAINTEXT://127.0.0.1:${port}`,
      KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
      KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
      KAFKA_CONTROLLER_QUORUM_VOTERS: '1@localhost:9093',
      KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '1',
      KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR: '1',
      KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR: '1',
      KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
      KAFKA_AUTO_CREATE_TOPICS_ENABLE: 'false',
    })
    .withWaitStrategy(Wait.forLogMessage(/Kafka Server started/))
    .withStartupTimeout(120_000)
    .start();
  const address = `127.0.0.1:${port}`;
  return {
    source: 'testcontainers',
    bootstrap: address,
    brokers: [address],
    stop: async () => {
      await container.stop();
    },
    killBroker: async () => {
      await container.stop({ remove: false, timeout: 0 });
    },
    restartBroker: async () => {
      await container.restart();
    },
  };
}
