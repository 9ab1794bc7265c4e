import {
  cooperativeStickyAssigner,
  type ExtendedGroupProtocolSubscription,
  type GroupAssignment,
  type GroupPartitionsAssigner,
} from '@platformatic/kafka';

/**
 * Cooperative-sticky assignment, balanced topic by topic. @platformatic/kafka's own assignor balances the number
 * of partitions per member over all subscribed topics together and moves the partitions that sort first: a second
 * batch-worker joining a group that reads the three lane topics took over the whole high lane and part of the low
 * one, and none of the normal lane, where the traffic is. Running that assignor once per topic spreads every
 * topic's partitions over its subscribers, and keeps its stickiness and its cooperative rule (a partition moving
 * from one member to another is revoked in one round and assigned in the next).
 */
export const perTopicCooperativeAssigner: GroupPartitionsAssigner = (current, members, topics, metadata) => {
  const merged = new Map<string, Map<string, GroupAssignment>>();
  for (const memberId of members.keys()) merged.set(memberId, new Map());
  for (const topic of [...topics].sort()) {
    const subscribers = new Map<string, ExtendedGroupProtocolSubscription>();
    for (const [memberId, member] of members) {
      if (!member.topics?.includes(topic)) continue;
      subscribers.set(memberId, {
        ...member,
        topics: [topic],
        ownedPartitions: (member.ownedPartitions ?? []).filter((owned) => owned.topic === topic),
      });
    }
    if (subscribers.size === 0) continue;
    for (const { memberId, assignments } of cooperativeStickyAssigner(
      current,
      subscribers,
      new Set([topic]),
      metadata,
    )) {
      for (const [name, assignment] of assignments) merged.get(memberId)?.set(name, assignment);
    }
  }
  return [...merged].map(([memberId, assignments]) => ({ memberId, assignments }));
};
