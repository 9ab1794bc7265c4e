import { describe, expect, it } from 'vitest';
import {
  type TopicDeclaration,
  type TopicId,
  topicDeclarations,
  topicName,
  topicSpecifications,
} from '../src/topics.ts';

const ids = Object.keys(topicDeclarations) as TopicId[];

describe('topicSpecifications', () => {
  it('gives every declared topic the deployment prefix', () => {
    const specs = topicSpecifications({ prefix: 'run-42.', replicationFactor: 1 });
    expect(specs.map((spec) => spec.name)).toEqual(ids.map((id) => `run-42.${topicDeclarations[id].base}`));
    expect(specs.map((spec) => spec.name)).toEqual(ids.map((id) => topicName(id, 'run-42.')));
  });

  it('uses the bare declared names with an empty prefix', () => {
    const specs = topicSpecifications({ prefix: '', replicationFactor: 1 });
    expect(specs.map((spec) => spec.name)).toEqual(ids.map((id) => topicDeclarations[id].base));
  });

  it('sets retention.ms on delete topics only, from their declaration', () => {
    const specs = topicSpecifications({ prefix: '', replicationFactor: 3 });
    const policies = new Set<string>();
    for (const [index, id] of ids.entries()) {
      const declaration: TopicDeclaration = topicDeclarations[id];
      const config = specs[index]?.config;
      policies.add(declaration.cleanupPolicy);
      expect(config?.['cleanup.policy'], id).toBe(declaration.cleanupPolicy);
      if (declaration.retentionMs === undefined) {
        expect(config, id).not.toHaveProperty('retention.ms');
      } else {
        expect(config?.['retention.ms'], id).toBe(String(declaration.retentionMs));
      }
    }
    // Both branches above must have been exercised for the test to mean anything.
    expect(policies).toEqual(new Set(['delete', 'compact', 'compact,delete']));
  });

  it.each([
    [1, '1'],
    [3, '2'],
  ])('sets min.insync.replicas for replication factor %i to %s', (replicationFactor, minInsync) => {
    for (const spec of topicSpecifications({ prefix: '', replicationFactor })) {
      expect(spec.replicationFactor, spec.name).toBe(replicationFactor);
      expect(spec.config['min.insync.replicas'], spec.name).toBe(minInsync);
    }
  });

  it('keeps the declared partition counts without an override', () => {
    const specs = topicSpecifications({ prefix: '', replicationFactor: 1 });
    expect(specs.map((spec) => spec.partitions)).toEqual(ids.map((id) => topicDeclarations[id].partitions));
  });

  it('applies a partitions override to every topic', () => {
    const specs = topicSpecifications({ prefix: '', replicationFactor: 1, partitions: 2 });
    expect(specs).toHaveLength(ids.length);
    for (const spec of specs) expect(spec.partitions, spec.name).toBe(2);
  });
});

describe('topic declarations', () => {
  const names = topicSpecifications({ prefix: 'p.', replicationFactor: 1 }).map((spec) => spec.name);

  it('have unique names', () => {
    expect(names.length).toBeGreaterThan(1);
    expect(new Set(names).size).toBe(names.length);
  });

  it('end every name with a version suffix', () => {
    for (const name of names) expect(name).toMatch(/\.v\d+$/);
  });
});
