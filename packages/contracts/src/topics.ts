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
  /** `compact,delete` keeps the latest record per key, and only for the retention time. */
  cleanupPolicy: 'delete' | 'compact' | 'compact,delete';
  /** For delete topics: how long records are kept. Compacted-only topics keep the latest record per key. */
  retentionMs?: number;
}

const day = 24 * 60 * 60 * 1000;

export const topicDeclarations = {
  requests: {
    base: 'sluice.requests.v1',
    purpose: 'Accepted requests of the normal lane, produced by the ingress and consumed by batch-workers.',
    partitions: 12,
    cleanupPolicy: 'delete',
    retentionMs: 7 * day,
  },
  requestsHigh: {
    base: 'sluice.requests.high.v1',
    purpose: 'Accepted requests of the high lane: drained first.',
    partitions: 12,
    cleanupPolicy: 'delete',
    retentionMs: 7 * day,
  },
  requestsLow: {
    base: 'sluice.requests.low.v1',
    purpose: 'Accepted requests of the low lane: drained last, with a guaranteed minimum share.',
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
    purpose: 'Latest status of every request, keyed by request id; the source state stores are rebuilt from.',
    partitions: 12,
    cleanupPolicy: 'compact,delete',
    retentionMs: 7 * day,
  },
  completions: {
    base: 'sluice.completions.v1',
    purpose: 'Completed requests and batches, from the aggregator to delivery.',
    partitions: 12,
    cleanupPolicy: 'delete',
    retentionMs: 7 * day,
  },
  webhookRetries: {
    base: 'sluice.deliveries.retry.v1',
    purpose: 'Webhooks waiting for another try, each with a not-before time; consumed by delivery.',
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

/** The request topic of each priority lane: lanes are topics so that a lower lane can be paused as a whole. */
export const laneTopics = {
  high: 'requestsHigh',
  normal: 'requests',
  low: 'requestsLow',
} as const satisfies Record<'high' | 'normal' | 'low', TopicId>;

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
  return (Object.keys(topicDeclarations) as TopicId[]).map((id) =>
    specify(topicName(id, layout.prefix), topicDeclarations[id], layout),
  );
}

/**
 * A tenant's own result topic, which only that tenant's credentials may read (Kafka ACLs on the name). Every
 * completion of the tenant's requests is published there as a CloudEvent.
 */
export const tenantResultTopic = {
  base: 'sluice.tenant.{tenant}.results.v1',
  purpose: "A tenant's completed requests and batches as CloudEvents, for the tenant's own consumers.",
  partitions: 6,
  cleanupPolicy: 'delete',
  retentionMs: 7 * day,
} as const satisfies TopicDeclaration;

export function tenantResultTopicName(tenant: string, prefix: string): string {
  return `${prefix}${tenantResultTopic.base.replace('{tenant}', tenant)}`;
}

export function tenantResultTopicSpecification(tenant: string, layout: TopicLayout): TopicSpecification {
  return specify(tenantResultTopicName(tenant, layout.prefix), tenantResultTopic, layout);
}

function specify(name: string, declaration: TopicDeclaration, layout: TopicLayout): TopicSpecification {
  const config: Record<string, string> = {
    'cleanup.policy': declaration.cleanupPolicy,
    // With three or more replicas an acknowledged record survives the loss of one broker.
    'min.insync.replicas': String(layout.replicationFactor >= 3 ? 2 : 1),
  };
  if (declaration.retentionMs !== undefined) config['retention.ms'] = String(declaration.retentionMs);
  return {
    name,
    partitions: layout.partitions ?? declaration.partitions,
    replicationFactor: layout.replicationFactor,
    config,
  };
}

/** Consumer groups of the consuming services. */
export const consumerGroups = {
  batchWorker: 'sluice.batch-worker',
  /** The retry topic has a group of its own, so that waiting retries never take the slots of new requests. */
  batchWorkerRetries: 'sluice.batch-worker.retries',
  aggregator: 'sluice.aggregator',
  delivery: 'sluice.delivery',
  deliveryRetries: 'sluice.delivery.retries',
} as const;

export function groupName(group: keyof typeof consumerGroups, prefix: string): string {
  return `${prefix}${consumerGroups[group]}`;
}

/**
 * The one group through which the ingress replicas sharing a state store (one Redis) feed it the status topic,
 * each status applied once by the replica that owns its partition. Named after the store, not the release, so that
 * replicas of two stores on one Kafka cluster (a Redis per region) each feed their own.
 */
export function statusStoreGroupName(store: string, prefix: string): string {
  return `${prefix}sluice.status-store.${store}`;
}

/**
 * A group of one instance that reads a whole compacted topic into memory (a table) and never commits: every
 * instance has its own, and a restart reads from the beginning again. The broker forgets it once it is empty.
 */
export function tableReaderGroupName(table: string, instance: string, prefix: string): string {
  return `${prefix}sluice.table.${table}.${instance}`;
}
