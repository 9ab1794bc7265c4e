import { dockerAnswers, startKafkaContainer } from './container.ts';
import { startJvmCluster } from './jvm.ts';
import { type KafkaHandle, KafkaUnavailableError } from './types.ts';

export interface StartKafkaOptions {
  /** 1 (default) or 3 for a replicated cluster; KAFKA_BROKERS is ignored when more than one is asked for. */
  brokers?: 1 | 3;
  /** Skip KAFKA_BROKERS and Docker, and start Kafka's own jars: the path CI takes here. */
  forceJvm?: boolean;
  detached?: boolean;
  env?: NodeJS.ProcessEnv;
}

/**
 * Gives a Kafka bootstrap address: KAFKA_BROKERS when set; else a KRaft broker in Docker through testcontainers
 * when a Docker engine answers; else Apache Kafka's jars from Maven Central run on the local JVM. Never answers
 * "no Kafka": when nothing works it throws an error naming what is missing, so that a run fails instead of skipping.
 */
export async function startKafka(options: StartKafkaOptions = {}): Promise<KafkaHandle> {
  const env = options.env ?? process.env;
  const brokers = options.brokers ?? 1;
  if (!options.forceJvm && brokers === 1 && env.KAFKA_BROKERS) {
    const addresses = env.KAFKA_BROKERS.split(',').map((address) => address.trim());
    return {
      source: 'env',
      bootstrap: addresses.join(','),
      brokers: addresses,
      stop: async () => {},
      killBroker: async () => {
        throw new Error('cannot kill a broker given by KAFKA_BROKERS');
      },
      restartBroker: async () => {
        throw new Error('cannot restart a broker given by KAFKA_BROKERS');
      },
    };
  }
  const problems: string[] = [];
  if (!options.forceJvm && brokers === 1) {
    if (await dockerAnswers(env)) return await startKafkaContainer();
    problems.push(`no Docker engine answers at ${env.DOCKER_HOST ?? 'unix:///var/run/docker.sock'}`);
  }
  try {
    return await startJvmCluster({ brokers, detached: options.detached ?? false, env });
  } catch (error) {
    if (!(error instanceof KafkaUnavailableError)) throw error;
    problems.push(error.message);
    throw new KafkaUnavailableError(
      [
        `Kafka could not be started${env.CI === 'true' ? ' (CI=true: tests never skip for want of a broker)' : ''}:`,
        ...problems.map((problem) => `  - ${problem}`),
        'Set KAFKA_BROKERS to a running broker, start a Docker engine, or install Java 17+ and Maven.',
      ].join('\n'),
      { cause: error },
    );
  }
}
