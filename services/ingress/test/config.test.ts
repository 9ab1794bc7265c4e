import { ConfigError } from '@sluice/config';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';

const required = { KAFKA_BROKERS: 'a:1,b:2', SLUICE_GATEWAY_CONFIG: '/etc/sluice/gateway.yaml' };

describe('ingress configuration', () => {
  it('parses brokers, port, adapter, the gateway file and the store settings', () => {
    const config = loadConfig({
      ...required,
      HTTP_PORT: '9000',
      KAFKA_CLIENT: 'kafkajs',
      STATUS_RETENTION_MS: '3600000',
    });
    expect(config).toMatchObject({
      KAFKA_BROKERS: ['a:1', 'b:2'],
      HTTP_PORT: 9000,
      KAFKA_CLIENT: 'kafkajs',
      SLUICE_GATEWAY_CONFIG: '/etc/sluice/gateway.yaml',
      STATUS_RETENTION_MS: 3_600_000,
      STATE_MAX_STATUSES: 1_000_000,
    });
  });

  it('rejects a port out of range and a missing gateway file path, naming both', () => {
    try {
      loadConfig({ KAFKA_BROKERS: 'a:1', HTTP_PORT: '70000' });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      const problems = (error as ConfigError).problems.join('\n');
      expect(problems).toContain('HTTP_PORT');
      expect(problems).toContain('SLUICE_GATEWAY_CONFIG');
    }
  });

  it('chooses the state store: embedded by default, Redis by URL or cluster nodes, never neither or both', () => {
    expect(loadConfig(required).STATE_STORE).toBe('embedded');
    expect(loadConfig({ ...required, STATE_STORE: 'redis', REDIS_URL: 'redis://r:6379' })).toMatchObject({
      STATE_STORE: 'redis',
      REDIS_URL: 'redis://r:6379',
      REDIS_KEY_PREFIX: 'sluice:',
    });
    expect(
      loadConfig({ ...required, STATE_STORE: 'redis', REDIS_CLUSTER_NODES: 'r1:7000, r2:7001' })
        .REDIS_CLUSTER_NODES,
    ).toEqual(['r1:7000', 'r2:7001']);
    expect(() => loadConfig({ ...required, STATE_STORE: 'redis' })).toThrow(ConfigError);
    expect(() =>
      loadConfig({ ...required, STATE_STORE: 'redis', REDIS_URL: 'redis://r', REDIS_CLUSTER_NODES: 'r:1' }),
    ).toThrow(/exactly one/);
    expect(() => loadConfig({ ...required, REDIS_URL: 'http://r:6379' })).toThrow(/REDIS_URL/);
    const cluster = { ...required, STATE_STORE: 'redis', REDIS_CLUSTER_NODES: 'r1:7000' };
    expect(
      loadConfig({ ...cluster, REDIS_USERNAME: 'sluice', REDIS_PASSWORD: 'pw', REDIS_TLS: 'true' }),
    ).toMatchObject({ REDIS_USERNAME: 'sluice', REDIS_PASSWORD: 'pw', REDIS_TLS: true });
    expect(loadConfig(cluster).REDIS_TLS).toBe(false);
    // A URL carries its own credentials: a separate password beside it would be ignored, so it is refused.
    expect(() =>
      loadConfig({ ...required, STATE_STORE: 'redis', REDIS_URL: 'redis://r:6379', REDIS_PASSWORD: 'pw' }),
    ).toThrow(/REDIS_CLUSTER_NODES; put them in REDIS_URL/);
  });
});
