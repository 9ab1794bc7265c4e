import type { PartitionLag, PartitionOffsetRange, TopicPartition } from './types.ts';

export function partitionKey(tp: TopicPartition): string {
  return `${tp.topic}:${tp.partition}`;
}

/** Partitions in `before` that are not in `after`: what a rebalance took away. */
export function revokedPartitions(before: TopicPartition[], after: TopicPartition[]): TopicPartition[] {
  const kept = new Set(after.map(partitionKey));
  return before.filter((tp) => !kept.has(partitionKey(tp)));
}

/** Partitions in `after` that were not in `before`: what a rebalance handed over. */
export function assignedPartitions(before: TopicPartition[], after: TopicPartition[]): TopicPartition[] {
  return revokedPartitions(after, before);
}

/** Groups partitions by topic, the shape both client libraries take for pause and resume. */
export function byTopic(partitions: TopicPartition[]): Array<{ topic: string; partitions: number[] }> {
  const grouped = new Map<string, number[]>();
  for (const { topic, partition } of partitions) {
    const list = grouped.get(topic) ?? [];
    list.push(partition);
    grouped.set(topic, list);
  }
  return [...grouped].map(([topic, list]) => ({ topic, partitions: list.sort((a, b) => a - b) }));
}

/** Splits a partition's records into batches of at most `max`, keeping offset order. */
export function chunk<T>(items: T[], max: number): T[][] {
  const chunks: T[][] = [];
  for (let start = 0; start < items.length; start += max) chunks.push(items.slice(start, start + max));
  return chunks;
}

/** A group's lag on one partition: from its committed offset, or from the log start when it has none. */
export function lagOf(range: PartitionOffsetRange, committed: bigint): PartitionLag {
  const from = committed < 0n ? range.start : committed;
  return { topic: range.topic, partition: range.partition, committed, end: range.end, lag: range.end - from };
}
