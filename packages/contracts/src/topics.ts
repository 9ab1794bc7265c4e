/**
 * Every Kafka topic Sluice uses, declared once. Services, provisioning, the Helm chart's topic job and the tests
 * read this list; a topic change is a change here. Names carry a version suffix: an incompatible record schema
 * gets a new topic rather than a surprise for old consumers.
 */

export interface TopicDeclaration {
  /** Name without the deployment prefix. */
  base: string;
  purpose: string;
  /** Partitions bound how many consumers of one group can work in parallel. */
  partitions: number;
  cleanupPolicy: 'delete' | 'compact';
  /** For delete topics: how long records are kept. Compacted topics keep the latest record per key. */
  retentionMs?: number;
}

const day = 24 * 60 * 60 * 1000;

export const topicDeclarations = {
  requests: {
    base: 'sluice.requests.v1',
    purpose: 'Accepted requests, produced by the ingress and consumed by batch-workers.',
    partitions: 12,
    cleanupPolicy: 'delete',
    retentionMs: 7 * day,
  },
  requestRetries: {
    base: 'sluice.requests.retry.v1',
    purpose: 'Requests waiting for a retry, each with a not-before time; consumed by batch-workers.',
    partitions: 12,
    cleanupPolicy: 'delete',
    retentionMs: 7 * day,
  },
  results: {
    base: 'sluice.results.v1',
    purpose: 'One result per finished request, from batch-workers to the aggregator.',
    partitions: 12,
    cleanupPolicy: 'delete',
    retentionMs: 7 * day,
  },
  batchState: {
    base: 'sluice.batch-state.v1',
    purpose: "Changelog of the aggregator's per-batch state, restored when partitions are assigned.",
    partitions: 12,
    cleanupPolicy: 'compact',
  },
  status: {
    base: 'sluice.status.v1',
    purpose: 'Latest status of every request, keyed by request id.',
    partitions: 12,
    cleanupPolicy: 'compact',
  },
  completions: {
    base: 'sluice.completions.v1',
    purpose: 'Completed requests and batches, from the aggregator to delivery.',
    partitions: 12,
    cleanupPolicy: 'delete',
    retentionMs: 7 * day,
  },
  deadLetters: {
    base: 'sluice.dead-letters.v1',
    purpose: 'Records that could not be processed or delivered, with the original record and every error.',
    partitions: 3,
    cleanupPolicy: 'delete',
    retentionMs: 30 * day,
  },
} as const satisfies Record<string, TopicDeclaration>;

export type TopicId = keyof typeof topicDeclarations;

/** The shape Kafka provisioning takes (structurally the Kafka package's TopicSpec). */
export interface TopicSpecification {
  name: string;
  partitions: number;
  replicationFactor: number;
  config: Record<string, string>;
}

export interface TopicLayout {
  /** Deployment prefix of every topic and group name; empty by default. */
  prefix: string;
  replicationFactor: number;
  /** Overrides every topic's partition count (small for tests, larger for big clusters). */
  partitions?: number;
}

export function topicName(id: TopicId, prefix: string): string {
  return `${prefix}${topicDeclarations[id].base}`;
}

export function topicSpecifications(layout: TopicLayout): TopicSpecification[] {
  return (Object.keys(topicDeclarations) as TopicId[]).map((id) => {
    const declaration: TopicDeclaration = topicDeclarations[id];
    const config: Record<string, string> = {
      'cleanup.policy': declaration.cleanupPolicy,
      // With three or more replicas an acknowledged record survives the loss of one broker.
      'min.insync.replicas': String(layout.replicationFactor >= 3 ? 2 : 1),
    };
    if (declaration.retentionMs !== undefined) config['retention.ms'] = String(declaration.retentionMs);
    return {
      name: topicName(id, layout.prefix),
      partitions: layout.partitions ?? declaration.partitions,
      replicationFactor: layout.replicationFactor,
      config,
    };
  });
}

/** Consumer groups, one per consuming service. */
export const consumerGroups = {
  batchWorker: 'sluice.batch-worker',
  aggregator: 'sluice.aggregator',
  delivery: 'sluice.delivery',
} as const;

export function groupName(group: keyof typeof consumerGroups, prefix: string): string {
  return `${prefix}${consumerGroups[group]}`;
}
