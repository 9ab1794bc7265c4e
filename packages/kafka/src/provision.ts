import { KafkaError, kafkaErrorCodes } from './errors.ts';
import type { Admin, TopicDescription, TopicSpec } from './types.ts';

export interface TopicMismatch {
  topic: string;
  field: 'partitions' | 'replicationFactor' | `config.${string}`;
  expected: string;
  actual: string;
}

export interface ProvisionReport {
  created: string[];
  existing: string[];
  mismatches: TopicMismatch[];
}

/** Compares a declared topic with what the cluster has. Pure, so that the rules are unit-tested. */
export function compareTopic(spec: TopicSpec, actual: TopicDescription): TopicMismatch[] {
  const mismatches: TopicMismatch[] = [];
  if (actual.partitions !== spec.partitions) {
    mismatches.push({
      topic: spec.name,
      field: 'partitions',
      expected: String(spec.partitions),
      actual: String(actual.partitions),
    });
  }
  if (actual.replicationFactor !== spec.replicationFactor) {
    mismatches.push({
      topic: spec.name,
      field: 'replicationFactor',
      expected: String(spec.replicationFactor),
      actual: String(actual.replicationFactor),
    });
  }
  for (const [name, expected] of Object.entries(spec.config)) {
    const value = actual.config[name];
    if (value !== expected) {
      mismatches.push({ topic: spec.name, field: `config.${name}`, expected, actual: value ?? '(unset)' });
    }
  }
  return mismatches;
}

/**
 * Creates the declared topics that are missing and reports how existing ones differ from their declaration.
 * Idempotent: running it twice creates nothing the second time. It never alters an existing topic, because
 * changing partitions or cleanup policy of a live topic is an operator's decision.
 */
export async function provisionTopics(admin: Admin, specs: TopicSpec[]): Promise<ProvisionReport> {
  const names = specs.map((spec) => spec.name);
  const before = await admin.describeTopics(names);
  const existingNames = new Set(before.map((topic) => topic.name));
  const missing = specs.filter((spec) => !existingNames.has(spec.name));
  if (missing.length > 0) {
    try {
      await admin.createTopics(missing);
    } catch (error) {
      // Another replica may have created the same topics a moment earlier; what counts is the state after.
      const after = await admin.describeTopics(missing.map((spec) => spec.name));
      if (after.length !== missing.length) throw error;
    }
  }
  const mismatches = specs.flatMap((spec) => {
    const actual = before.find((topic) => topic.name === spec.name);
    return actual === undefined ? [] : compareTopic(spec, actual);
  });
  return {
    created: missing.map((spec) => spec.name),
    existing: [...existingNames],
    mismatches,
  };
}

/** Throws when a provision report has mismatches; services call it when they must not run on a drifted topic. */
export function assertNoMismatches(report: ProvisionReport): void {
  if (report.mismatches.length === 0) return;
  const lines = report.mismatches.map(
    (m) => `${m.topic} ${m.field}: expected ${m.expected}, found ${m.actual}`,
  );
  throw new KafkaError(
    kafkaErrorCodes.topicMismatch,
    `topics differ from their declaration: ${lines.join('; ')}`,
  );
}
