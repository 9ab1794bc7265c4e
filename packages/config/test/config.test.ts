import { describe, expect, it } from 'vitest';
import { ConfigError, envBoolean, kafkaConnectionFrom, parseEnv, serviceEnv, z } from '../src/index.ts';

function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

describe('parseEnv with serviceEnv', () => {
  it('applies the defaults of every variable that is not set', () => {
    expect(parseEnv(serviceEnv, { KAFKA_BROKERS: 'kafka-0:9092' })).toEqual({
      KAFKA_BROKERS: ['kafka-0:9092'],
      KAFKA_CLIENT: 'platformatic',
      KAFKA_TLS: false,
      KAFKA_TOPIC_PREFIX: '',
      KAFKA_REPLICATION_FACTOR: 1,
      KAFKA_PROVISION_TOPICS: true,
      KAFKA_PROBE_INTERVAL_MS: 2_000,
      KAFKA_PROBE_TIMEOUT_MS: 3_000,
      HTTP_HOST: '0.0.0.0',
      HTTP_PORT: 8080,
      LOG_LEVEL: 'info',
      SHUTDOWN_TIMEOUT_MS: 20_000,
      DRAIN_TIMEOUT_MS: 10_000,
      REGION: 'local',
      SERVICE_VERSION: '0.1.0',
      TRACES_SAMPLE_RATIO: 1,
      TRACES_EXPORT_DELAY_MS: 2_000,
      LOG_SAMPLE_EVERY: 100,
    });
  });

  it('refuses a broker probe more often than every 100 ms, naming the variable', () => {
    expect(() =>
      parseEnv(serviceEnv, { KAFKA_BROKERS: 'kafka-0:9092', KAFKA_PROBE_INTERVAL_MS: '10' }),
    ).toThrow(/KAFKA_PROBE_INTERVAL_MS/);
  });

  it('splits KAFKA_BROKERS at commas and trims each address', () => {
    const env = parseEnv(serviceEnv, { KAFKA_BROKERS: 'kafka-0:9092, kafka-1:9093 ,10.0.0.7:19092' });
    expect(env.KAFKA_BROKERS).toEqual(['kafka-0:9092', 'kafka-1:9093', '10.0.0.7:19092']);
  });

  it('coerces numeric variables from their text', () => {
    const env = parseEnv(serviceEnv, {
      KAFKA_BROKERS: 'k:1',
      HTTP_PORT: '3000',
      KAFKA_TOPIC_PARTITIONS: '2',
    });
    expect(env.HTTP_PORT).toBe(3000);
    expect(env.KAFKA_TOPIC_PARTITIONS).toBe(2);
  });

  it('reports a missing KAFKA_BROKERS as not set', () => {
    const error = configError(() => parseEnv(serviceEnv, {}));
    expect(error.problems).toHaveLength(1);
    expect(error.problems[0]).toMatch(/^KAFKA_BROKERS: .*\(not set\)$/);
  });

  it('reports a bad KAFKA_BROKERS, HTTP_PORT and KAFKA_CLIENT at once in one ConfigError', () => {
    const error = configError(() =>
      parseEnv(serviceEnv, { KAFKA_BROKERS: 'no-port', HTTP_PORT: 'eighty', KAFKA_CLIENT: 'librdkafka' }),
    );
    expect(error.problems).toHaveLength(3);
    for (const variable of ['KAFKA_BROKERS', 'HTTP_PORT', 'KAFKA_CLIENT']) {
      expect(error.problems.filter((problem) => problem.startsWith(variable))).toHaveLength(1);
      expect(error.message).toContain(variable);
    }
  });

  it('names a malformed KAFKA_BROKERS by its variable and does not call the set variable unset', () => {
    const error = configError(() => parseEnv(serviceEnv, { KAFKA_BROKERS: 'kafka-0:9092,no-port' }));
    expect(error.problems).toHaveLength(1);
    expect(error.problems[0]).toMatch(/^KAFKA_BROKERS: expected host:port/);
    expect(error.problems[0]).not.toContain('(not set)');
  });

  it('rejects an out-of-range HTTP_PORT', () => {
    const error = configError(() => parseEnv(serviceEnv, { KAFKA_BROKERS: 'k:1', HTTP_PORT: '70000' }));
    expect(error.problems).toHaveLength(1);
    expect(error.problems[0]).toMatch(/^HTTP_PORT: /);
  });
});

describe('envBoolean', () => {
  const schema = { FLAG: envBoolean(false) };

  it.each([
    ['true', true],
    ['1', true],
    ['yes', true],
    ['false', false],
    ['0', false],
    ['no', false],
  ])('reads %s as %s', (text, value) => {
    expect(parseEnv(schema, { FLAG: text }).FLAG).toBe(value);
  });

  it.each(['TRUE', 'on', 'off', '', 'y'])('rejects %j', (text) => {
    const error = configError(() => parseEnv(schema, { FLAG: text }));
    expect(error.problems).toHaveLength(1);
    expect(error.problems[0]).toMatch(/^FLAG: /);
  });

  it('uses its fallback when the variable is not set', () => {
    expect(parseEnv({ FLAG: envBoolean(true) }, {}).FLAG).toBe(true);
    expect(parseEnv({ FLAG: envBoolean(false) }, {}).FLAG).toBe(false);
  });
});

describe('kafkaConnectionFrom', () => {
  it('leaves sasl out when KAFKA_SASL_MECHANISM is not set, even with credentials present', () => {
    const env = parseEnv(serviceEnv, {
      KAFKA_BROKERS: 'a:9092,b:9092',
      KAFKA_TLS: 'yes',
      KAFKA_SASL_USERNAME: 'sluice',
      KAFKA_SASL_PASSWORD: 'secret',
    });
    const connection = kafkaConnectionFrom(env, 'ingress');
    expect(connection).toEqual({ brokers: ['a:9092', 'b:9092'], clientId: 'ingress', tls: true });
    expect('sasl' in connection).toBe(false);
  });

  it('builds sasl from the mechanism and credentials when KAFKA_SASL_MECHANISM is set', () => {
    const env = parseEnv(serviceEnv, {
      KAFKA_BROKERS: 'a:9092',
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: 'sluice',
      KAFKA_SASL_PASSWORD: 'secret',
    });
    expect(kafkaConnectionFrom(env, 'aggregator')).toEqual({
      brokers: ['a:9092'],
      clientId: 'aggregator',
      tls: false,
      sasl: { mechanism: 'scram-sha-512', username: 'sluice', password: 'secret' },
    });
  });

  it('uses empty credentials when only the mechanism is set', () => {
    const env = parseEnv(serviceEnv, { KAFKA_BROKERS: 'a:9092', KAFKA_SASL_MECHANISM: 'plain' });
    expect(kafkaConnectionFrom(env, 'delivery').sasl).toEqual({
      mechanism: 'plain',
      username: '',
      password: '',
    });
  });
});

describe('parseEnv with a custom shape', () => {
  it('returns the parsed values typed by the shape', () => {
    const env = parseEnv(
      { NAME: z.string(), COUNT: z.coerce.number() },
      { NAME: 'x', COUNT: '3', OTHER: 'y' },
    );
    expect(env).toEqual({ NAME: 'x', COUNT: 3 });
  });
});
