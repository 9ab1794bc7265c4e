import { describe, expect, it } from 'vitest';
import { EmbeddedStateStore } from '../src/index.ts';
import { stateStoreContract, status } from './store-contract.ts';

stateStoreContract('embedded', {
  create: async (clock, { retentionMs }) =>
    new EmbeddedStateStore({ retentionMs, maxStatuses: 10_000, now: () => clock.now }),
});

describe('the embedded store', () => {
  it('holds at most maxStatuses, dropping the oldest first', async () => {
    const store = new EmbeddedStateStore({ retentionMs: 60_000, maxStatuses: 3, now: () => 1_000 });
    const statuses = Array.from({ length: 5 }, () => status());
    await store.applyStatuses(statuses);
    expect(store.size).toBe(3);
    expect(await store.getStatus(statuses[0]?.id ?? '')).toBeUndefined();
    expect(await store.getStatus(statuses[4]?.id ?? '')).toBeDefined();
  });

  it('is not ready until marked loaded', () => {
    const store = new EmbeddedStateStore({ retentionMs: 1, maxStatuses: 1 });
    expect(store.ready()).toBe(false);
    store.markReady();
    expect(store.ready()).toBe(true);
  });
});
