import { describe, expect, it } from 'vitest';
import { assignedPartitions, byTopic, chunk, partitionKey, revokedPartitions } from '../src/assignment.ts';
import type { TopicPartition } from '../src/types.ts';

const tp = (topic: string, partition: number): TopicPartition => ({ topic, partition });

describe('rebalance differences', () => {
  const before = [tp('requests', 0), tp('requests', 1), tp('results', 0)];
  const after = [tp('requests', 1), tp('results', 0), tp('results', 1), tp('requests', 2)];

  it('revokedPartitions lists what was held before and is gone after', () => {
    expect(revokedPartitions(before, after)).toEqual([tp('requests', 0)]);
  });

  it('assignedPartitions lists what is held after and was not before', () => {
    expect(assignedPartitions(before, after)).toEqual([tp('results', 1), tp('requests', 2)]);
  });

  it('treats the same partition number on another topic as a different partition', () => {
    expect(revokedPartitions([tp('a', 0)], [tp('b', 0)])).toEqual([tp('a', 0)]);
    expect(assignedPartitions([tp('a', 0)], [tp('b', 0)])).toEqual([tp('b', 0)]);
  });

  it('reports nothing when the assignment is unchanged apart from its order', () => {
    const reordered = [...before].reverse();
    expect(revokedPartitions(before, reordered)).toEqual([]);
    expect(assignedPartitions(before, reordered)).toEqual([]);
  });

  it('revokes everything on an empty assignment and assigns everything from an empty one', () => {
    expect(revokedPartitions(before, [])).toEqual(before);
    expect(assignedPartitions([], after)).toEqual(after);
  });

  it('keys a partition by topic and number', () => {
    expect(partitionKey(tp('sluice.requests.v1', 7))).toBe('sluice.requests.v1:7');
  });
});

describe('byTopic', () => {
  it('groups partitions per topic with each topic listed once and its partitions sorted numerically', () => {
    const grouped = byTopic([tp('b', 10), tp('a', 2), tp('b', 2), tp('a', 0), tp('b', 9)]);
    expect(grouped).toEqual([
      { topic: 'b', partitions: [2, 9, 10] },
      { topic: 'a', partitions: [0, 2] },
    ]);
  });

  it('returns no groups for no partitions', () => {
    expect(byTopic([])).toEqual([]);
  });
});

describe('chunk', () => {
  it('splits into pieces of at most max, keeping order, with the remainder last', () => {
    expect(chunk([1, 2, 3, 4, 5, 6, 7], 3)).toEqual([[1, 2, 3], [4, 5, 6], [7]]);
  });

  it('keeps a list no longer than max in one piece', () => {
    expect(chunk(['a', 'b'], 2)).toEqual([['a', 'b']]);
    expect(chunk(['a'], 5)).toEqual([['a']]);
  });

  it('returns no pieces for an empty list', () => {
    expect(chunk([], 4)).toEqual([]);
  });
});
