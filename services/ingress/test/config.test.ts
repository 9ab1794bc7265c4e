import { ConfigError } from '@sluice/config';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';

describe('ingress configuration', () => {
  it('parses brokers, port and adapter', () => {
    const config = loadConfig({ KAFKA_BROKERS: 'a:1,b:2', HTTP_PORT: '9000', KAFKA_CLIENT: 'kafkajs' });
    expect(config).toMatchObject({ KAFKA_BROKERS: ['a:1', 'b:2'], HTTP_PORT: 9000, KAFKA_CLIENT: 'kafkajs' });
  });

  it('rejects a port out of range', () => {
    expect(() => loadConfig({ KAFKA_BROKERS: 'a:1', HTTP_PORT: '70000' })).toThrow(ConfigError);
  });
});
