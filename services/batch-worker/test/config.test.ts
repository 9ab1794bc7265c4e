import { ConfigError } from '@sluice/config';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';

describe('batch-worker configuration', () => {
  it('applies defaults to a minimal environment', () => {
    const config = loadConfig({ KAFKA_BROKERS: 'localhost:9092', SLUICE_GATEWAY_CONFIG: 'gateway.yaml' });
    expect(config.WORKER_MAX_IN_FLIGHT).toBe(1024);
    expect(config.KAFKA_CLIENT).toBe('platformatic');
    expect(config.KAFKA_BROKERS).toEqual(['localhost:9092']);
  });

  it('rejects a missing broker list, a missing gateway file and a non-positive in-flight bound, naming both', () => {
    let failure: unknown;
    try {
      loadConfig({ WORKER_MAX_IN_FLIGHT: '0' });
    } catch (error) {
      failure = error;
    }
    expect(failure).toBeInstanceOf(ConfigError);
    const problems = (failure as ConfigError).problems.join('\n');
    expect(problems).toContain('KAFKA_BROKERS');
    expect(problems).toContain('SLUICE_GATEWAY_CONFIG');
    expect(problems).toContain('WORKER_MAX_IN_FLIGHT');
  });
});
