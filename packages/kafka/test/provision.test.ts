import { describe, expect, it } from 'vitest';
import { KafkaError } from '../src/errors.ts';
import { assertNoMismatches, compareTopic, type ProvisionReport } from '../src/provision.ts';
import type { TopicDescription, TopicSpec } from '../src/types.ts';

const spec: TopicSpec = {
  name: 'sluice.requests.v1',
  partitions: 12,
  replicationFactor: 3,
  config: { 'cleanup.policy': 'delete', 'retention.ms': '604800000', 'min.insync.replicas': '2' },
};

function described(overrides: Partial<TopicDescription> = {}): TopicDescription {
  return {
    name: spec.name,
    partitions: spec.partitions,
    replicationFactor: spec.replicationFactor,
    config: { ...spec.config },
    ...overrides,
  };
}

describe('compareTopic', () => {
  it('finds no mismatch when the topic matches its declaration', () => {
    expect(compareTopic(spec, described())).toEqual([]);
  });

  it('ignores configuration the declaration does not mention', () => {
    const actual = described({ config: { ...spec.config, 'segment.bytes': '1073741824' } });
    expect(compareTopic(spec, actual)).toEqual([]);
  });

  it('reports differing partitions and replication factor with expected and actual values', () => {
    expect(compareTopic(spec, described({ partitions: 6, replicationFactor: 1 }))).toEqual([
      { topic: spec.name, field: 'partitions', expected: '12', actual: '6' },
      { topic: spec.name, field: 'replicationFactor', expected: '3', actual: '1' },
    ]);
  });

  it('reports a differing config value and a missing one as unset', () => {
    const actual = described({ config: { 'cleanup.policy': 'compact', 'min.insync.replicas': '2' } });
    expect(compareTopic(spec, actual)).toEqual([
      { topic: spec.name, field: 'config.cleanup.policy', expected: 'delete', actual: 'compact' },
      { topic: spec.name, field: 'config.retention.ms', expected: '604800000', actual: '(unset)' },
    ]);
  });
});

describe('assertNoMismatches', () => {
  const report = (mismatches: ProvisionReport['mismatches']): ProvisionReport => ({
    created: [],
    existing: [spec.name],
    mismatches,
  });

  it('accepts a report without mismatches', () => {
    expect(() => assertNoMismatches(report([]))).not.toThrow();
  });

  it('throws a KAFKA_TOPIC_MISMATCH error that names every mismatch', () => {
    const failing = report([
      { topic: 'sluice.requests.v1', field: 'partitions', expected: '12', actual: '6' },
      { topic: 'sluice.status.v1', field: 'config.cleanup.policy', expected: 'compact', actual: 'delete' },
    ]);
    let thrown: unknown;
    try {
      assertNoMismatches(failing);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(KafkaError);
    const error = thrown as KafkaError;
    expect(error.code).toBe('KAFKA_TOPIC_MISMATCH');
    expect(error.retryable).toBe(false);
    expect(error.message).toContain('sluice.requests.v1 partitions: expected 12, found 6');
    expect(error.message).toContain('sluice.status.v1 config.cleanup.policy: expected compact, found delete');
  });
});
