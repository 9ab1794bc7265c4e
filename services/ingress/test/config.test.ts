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
});
