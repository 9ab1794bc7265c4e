import type { StatusMessage } from '@sluice/contracts';
import { describe, expect, it } from 'vitest';
import type { StateStore } from '../src/index.ts';

export interface StoreFactory {
  /** A fresh, empty store whose clock the test controls. */
  create(clock: { now: number }, options: { retentionMs: number }): Promise<StateStore>;
}

let sequence = 0;
export function status(overrides: Partial<StatusMessage> = {}): StatusMessage {
  sequence += 1;
  return {
    id: `r-${sequence}-${Math.random().toString(36).slice(2)}`,
    batchId: `b-${sequence}`,
    single: true,
    tenant: 'acme',
    route: 'orders',
    status: 'queued',
    attempts: 0,
    timings: { acceptedAt: 1_000 },
    updatedAt: 1_000,
    ...overrides,
  };
}

/** The behaviour every state store implementation must have; run against each of them. */
export function stateStoreContract(name: string, factory: StoreFactory): void {
  describe(`state store contract: ${name}`, () => {
    const retentionMs = 60_000;
    const open = (now = 1_000) => {
      const clock = { now };
      return factory.create(clock, { retentionMs }).then((store) => ({ store, clock }));
    };

    it('keeps the status furthest along, whatever order the records arrive in', async () => {
      const { store } = await open();
      const queued = status();
      const done = {
        ...queued,
        status: 'succeeded' as const,
        attempts: 1,
        result: { status: 200, headers: {}, body: 'ok' },
        updatedAt: 2_000,
      };
      await store.applyStatuses([done]);
      await store.applyStatuses([queued]);
      expect(await store.getStatus(queued.id)).toEqual(done);
      const processing = { ...queued, status: 'processing' as const, updatedAt: 1_500 };
      await store.applyStatuses([processing]);
      expect((await store.getStatus(queued.id))?.status).toBe('succeeded');
      await store.close();
    });

    it('never replaces a terminal status with another terminal one', async () => {
      const { store } = await open();
      const first = status({ status: 'expired', updatedAt: 5_000 });
      await store.applyStatuses([first, { ...first, status: 'succeeded', updatedAt: 6_000 }]);
      expect((await store.getStatus(first.id))?.status).toBe('expired');
      await store.close();
    });

    it('lists a batch by its id and tells listeners of each change', async () => {
      const { store } = await open();
      const batchId = `batch-${Math.random()}`;
      const members = [status({ batchId, single: false }), status({ batchId, single: false })];
      const seen: string[] = [];
      const unsubscribe = store.subscribe({ batchId }, (s) => seen.push(`${s.id}:${s.status}`));
      const byId: string[] = [];
      const unsubscribeId = store.subscribe({ id: members[0]?.id ?? '' }, (s) => byId.push(s.status));
      await store.applyStatuses(members);
      await store.applyStatuses([
        { ...(members[0] as StatusMessage), status: 'processing', updatedAt: 2_000 },
      ]);
      const batch = await store.getBatch(batchId);
      expect(batch?.map((s) => s.id).sort()).toEqual(members.map((m) => m.id).sort());
      await waitUntil(() => seen.length === 3 && byId.length === 2);
      expect(byId).toEqual(['queued', 'processing']);
      unsubscribe();
      unsubscribeId();
      await store.applyStatuses([
        { ...(members[1] as StatusMessage), status: 'processing', updatedAt: 2_000 },
      ]);
      expect(seen).toHaveLength(3);
      expect(await store.getBatch('no-such-batch')).toBeUndefined();
      await store.close();
    });

    it('forgets statuses older than the retention window', async () => {
      const { store, clock } = await open();
      const old = status({ timings: { acceptedAt: 1_000 } });
      await store.applyStatuses([old]);
      expect(await store.getStatus(old.id)).toBeDefined();
      clock.now = 1_000 + retentionMs + 1;
      expect(await store.getStatus(old.id)).toBeUndefined();
      expect(await store.getBatch(old.batchId)).toBeUndefined();
      await store.close();
    });

    it('claims an idempotency key once: same content is the original id, other content a conflict', async () => {
      const { store, clock } = await open();
      const scope = { tenant: 'acme', key: `key-${Math.random()}` };
      expect(await store.claimIdempotencyKey(scope, 'fp-1', 'id-1', 10_000)).toEqual({ outcome: 'claimed' });
      expect(await store.claimIdempotencyKey(scope, 'fp-1', 'id-2', 10_000)).toEqual({
        outcome: 'existing',
        id: 'id-1',
      });
      expect(await store.claimIdempotencyKey(scope, 'fp-2', 'id-3', 10_000)).toEqual({
        outcome: 'conflict',
        id: 'id-1',
      });
      // Another tenant's identical key is another key.
      expect(await store.claimIdempotencyKey({ ...scope, tenant: 'globex' }, 'fp-1', 'id-4', 10_000)).toEqual(
        {
          outcome: 'claimed',
        },
      );
      clock.now += 10_001;
      expect(await store.claimIdempotencyKey(scope, 'fp-2', 'id-5', 10_000)).toEqual({ outcome: 'claimed' });
      await store.close();
    });

    it('decides concurrent claims of one key with exactly one winner', async () => {
      const { store } = await open();
      const scope = { tenant: 'acme', key: `race-${Math.random()}` };
      const claims = await Promise.all(
        Array.from({ length: 50 }, (_, i) => store.claimIdempotencyKey(scope, 'fp', `id-${i}`, 60_000)),
      );
      const winners = claims.filter((claim) => claim.outcome === 'claimed');
      expect(winners).toHaveLength(1);
      const ids = new Set(claims.flatMap((claim) => (claim.outcome === 'existing' ? [claim.id] : [])));
      expect(ids.size).toBe(1);
      await store.close();
    });

    it('gives a released key to the next claim, but only when the releaser owns it', async () => {
      const { store } = await open();
      const scope = { tenant: 'acme', key: `release-${Math.random()}` };
      await store.claimIdempotencyKey(scope, 'fp', 'id-1', 60_000);
      await store.releaseIdempotencyKey(scope, 'someone-else');
      expect((await store.claimIdempotencyKey(scope, 'fp', 'id-2', 60_000)).outcome).toBe('existing');
      await store.releaseIdempotencyKey(scope, 'id-1');
      expect((await store.claimIdempotencyKey(scope, 'fp', 'id-2', 60_000)).outcome).toBe('claimed');
      await store.close();
    });

    it('lets a later redrive generation replace a terminal status, and never an earlier one', async () => {
      const { store } = await open();
      const dead = status({ status: 'dead', attempts: 3, updatedAt: 5_000 });
      const redriven = { ...dead, batchId: `${dead.batchId}.r1`, status: 'queued' as const, generation: 1 };
      await store.applyStatuses([dead]);
      await store.applyStatuses([{ ...redriven, updatedAt: 6_000 }]);
      expect(await store.getStatus(dead.id)).toMatchObject({ status: 'queued', generation: 1 });
      // A replay of the first generation's records changes nothing.
      await store.applyStatuses([{ ...dead, updatedAt: 7_000 }]);
      expect((await store.getStatus(dead.id))?.generation).toBe(1);
      expect((await store.getBatch(redriven.batchId))?.map((s) => s.id)).toEqual([dead.id]);
      await store.close();
    });

    it('limits a key at its rate and burst, shares nothing between keys, and reports the headers', async () => {
      const { store, clock } = await open(1_000_000);
      const rule = { ratePerSecond: 10, burst: 5 };
      const key = `tenant-${Math.random()}`;
      const decisions = [];
      for (let i = 0; i < 6; i += 1) decisions.push(await store.consumeRateLimit(key, rule, 1));
      expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, true, true, false]);
      expect(decisions.map((d) => d.remaining)).toEqual([4, 3, 2, 1, 0, 0]);
      expect(decisions[4]).toMatchObject({ limit: 5, resetMs: 500, retryAfterMs: 0 });
      expect(decisions[5]?.retryAfterMs).toBeCloseTo(100, 0);
      // Another key has its own bucket.
      expect((await store.consumeRateLimit(`${key}-other`, rule, 1)).allowed).toBe(true);
      // A refused request took nothing: 100 ms later exactly one more goes.
      clock.now += 100;
      expect((await store.consumeRateLimit(key, rule, 1)).allowed).toBe(true);
      expect((await store.consumeRateLimit(key, rule, 1)).allowed).toBe(false);
      // A cost above the burst never goes.
      clock.now += 10_000;
      expect((await store.consumeRateLimit(key, rule, 6)).retryAfterMs).toBe(Number.POSITIVE_INFINITY);
      expect(await store.consumeRateLimit(key, rule, 5)).toMatchObject({ allowed: true, remaining: 0 });
      await store.close();
    });

    it('allows exactly the burst to concurrent takers of one key', async () => {
      const { store } = await open(2_000_000);
      const rule = { ratePerSecond: 0.001, burst: 20 };
      const key = `race-${Math.random()}`;
      const decisions = await Promise.all(
        Array.from({ length: 60 }, () => store.consumeRateLimit(key, rule, 1)),
      );
      expect(decisions.filter((d) => d.allowed)).toHaveLength(20);
      await store.close();
    });

    it('knows idempotency keys carried by statuses, so a rebuilt store still recognises duplicates', async () => {
      // A key names the batch it was submitted with; a single request's id is its batch id.
      const { store } = await open();
      const single = status({ idempotency: { key: `k-${Math.random()}`, fingerprint: 'fp' } });
      const carried = { ...single, batchId: single.id };
      await store.applyStatuses([carried]);
      const scope = { tenant: carried.tenant, key: carried.idempotency?.key ?? '' };
      expect(await store.claimIdempotencyKey(scope, 'fp', 'new-id', 60_000)).toEqual({
        outcome: 'existing',
        id: carried.id,
      });
      await store.close();
    });
  });
}

async function waitUntil(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i += 1) await new Promise((resolve) => setTimeout(resolve, 10));
}
