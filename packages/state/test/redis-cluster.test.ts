import { type RedisClusterHandle, startRedisCluster } from '@sluice/testkit';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisStores } from './redis-fixtures.ts';
import { stateStoreContract, status } from './store-contract.ts';

let cluster: RedisClusterHandle;
let admin: Cluster;

beforeAll(async () => {
  cluster = await startRedisCluster(3);
  admin = new Cluster(cluster.nodes);
});

afterAll(async () => {
  admin?.disconnect();
  await cluster?.stop();
});

const stores = redisStores(() => ({ nodes: cluster.nodes }));

stateStoreContract('redis cluster', stores.factory);

describe('the Redis store on a cluster', () => {
  it('keeps each batch in one slot (its hash tag) and spreads batches over the nodes', async () => {
    const store = await stores.create({ retentionMs: 60_000 });
    const now = Date.now();
    const batchIds = Array.from({ length: 12 }, (_, i) => `batch-${i}-${Math.random()}`);
    const members = batchIds.flatMap((batchId) =>
      Array.from({ length: 8 }, () => status({ batchId, single: false, timings: { acceptedAt: now } })),
    );
    await store.applyStatuses(members);

    const owners = new Set<string>();
    for (const batchId of batchIds) {
      const [tag, batchKey, channel] = await Promise.all(
        [batchId, store.keys.batch(batchId), store.keys.channel(batchId)].map((key) =>
          admin.cluster('KEYSLOT', key),
        ),
      );
      expect(batchKey).toBe(tag);
      expect(channel).toBe(tag);
      expect(await admin.hlen(store.keys.batch(batchId))).toBe(8);
      expect((await store.getBatch(batchId))?.length).toBe(8);
      // Only the node that owns the slot holds the batch.
      const holders: string[] = [];
      for (const node of admin.nodes('master')) {
        if ((await node.call('CLUSTER', 'COUNTKEYSINSLOT', String(tag))) !== 0) {
          holders.push(`${node.options.host}:${node.options.port}`);
        }
      }
      expect(holders).toHaveLength(1);
      owners.add(holders[0] ?? '');
    }
    expect(owners.size).toBeGreaterThan(1);

    // Every key the store wrote for a batch carries the batch's tag, so scripts never cross a slot.
    const written = (
      await Promise.all(admin.nodes('master').map((node) => node.keys(`${store.keys.prefix}*`)))
    ).flat();
    const batchKeys = written.filter((key) => key.includes('{'));
    expect(batchKeys.sort()).toEqual(batchIds.map((batchId) => store.keys.batch(batchId)).sort());
    for (const member of members) expect((await store.getStatus(member.id))?.batchId).toBe(member.batchId);
  });

  it('sets TTLs on a cluster too', async () => {
    const store = await stores.create({ retentionMs: 60_000 });
    const single = status({ timings: { acceptedAt: Date.now() } });
    await store.applyStatuses([{ ...single, batchId: single.id }]);
    expect(await admin.pttl(store.keys.batch(single.id))).toBeGreaterThan(50_000);
    expect(await admin.pttl(store.keys.request(single.id))).toBeGreaterThan(50_000);
  });
});
