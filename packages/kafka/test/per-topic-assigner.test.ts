import type {
  ClusterMetadata,
  ExtendedGroupProtocolSubscription,
  GroupAssignment,
} from '@platformatic/kafka';
import { describe, expect, it } from 'vitest';
import { perTopicCooperativeAssigner } from '../src/adapters/per-topic-assigner.ts';

const lanes = ['lane.high', 'lane.low', 'lane.normal'];

function metadata(partitions: number): ClusterMetadata {
  return {
    id: 'cluster',
    brokers: new Map(),
    controllerId: 1,
    lastUpdate: 0,
    topics: new Map(
      lanes.map((topic) => [topic, { partitionsCount: partitions } as never]),
    ) as ClusterMetadata['topics'],
  };
}

function member(
  memberId: string,
  owned: GroupAssignment[],
  generationId: number,
): [string, ExtendedGroupProtocolSubscription] {
  return [memberId, { memberId, version: 1, topics: lanes, ownedPartitions: owned, generationId }];
}

/** Partitions per topic of each member, as `{ member: { topic: [partitions] } }`. */
function shape(assignments: ReturnType<typeof perTopicCooperativeAssigner>) {
  return Object.fromEntries(
    assignments.map(({ memberId, assignments: byTopic }) => [
      memberId,
      Object.fromEntries([...byTopic.values()].map((a) => [a.topic, [...a.partitions].sort()])),
    ]),
  );
}

const all = (partitions: number[]): GroupAssignment[] => lanes.map((topic) => ({ topic, partitions }));

describe('perTopicCooperativeAssigner', () => {
  it('gives a member that joins a share of every topic, the busy normal lane included', () => {
    // a owns every partition of the three lanes; b joins. First round: a gives up half of each topic.
    const first = perTopicCooperativeAssigner(
      '',
      new Map([member('a', all([0, 1, 2, 3, 4, 5]), 1), member('b', [], -1)]),
      new Set(lanes),
      metadata(6),
    );
    const revokeRound = shape(first);
    expect(revokeRound.b).toEqual({});
    for (const topic of lanes) expect(revokeRound.a?.[topic]).toHaveLength(3);

    // Second round: what a gave up goes to b, three partitions of each topic.
    const kept = [...(first.find((m) => m.memberId === 'a')?.assignments.values() ?? [])];
    const second = shape(
      perTopicCooperativeAssigner(
        '',
        new Map([member('a', kept, 2), member('b', [], 2)]),
        new Set(lanes),
        metadata(6),
      ),
    );
    for (const topic of lanes) {
      expect(second.a?.[topic]).toEqual(revokeRound.a?.[topic]);
      expect(second.b?.[topic]).toHaveLength(3);
      expect([...(second.a?.[topic] ?? []), ...(second.b?.[topic] ?? [])].sort()).toEqual([0, 1, 2, 3, 4, 5]);
    }
  });

  it('moves nothing when every topic is already balanced (sticky)', () => {
    const members = new Map([
      member(
        'a',
        lanes.map((topic) => ({ topic, partitions: [0, 1] })),
        4,
      ),
      member(
        'b',
        lanes.map((topic) => ({ topic, partitions: [2, 3] })),
        4,
      ),
    ]);
    const result = shape(perTopicCooperativeAssigner('', members, new Set(lanes), metadata(4)));
    for (const topic of lanes) {
      expect(result.a?.[topic]).toEqual([0, 1]);
      expect(result.b?.[topic]).toEqual([2, 3]);
    }
  });

  it('hands the partitions of a member that left to those that stay, topic by topic', () => {
    // b is gone: a gets all of b's partitions back in one round (nothing to revoke from anyone alive).
    const members = new Map([
      member(
        'a',
        lanes.map((topic) => ({ topic, partitions: [0, 1, 2] })),
        3,
      ),
    ]);
    const result = shape(perTopicCooperativeAssigner('', members, new Set(lanes), metadata(6)));
    for (const topic of lanes) expect(result.a?.[topic]).toEqual([0, 1, 2, 3, 4, 5]);
  });
});
