import type { Admin } from '@sluice/kafka';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BrokerProbe } from '../src/broker-probe.ts';

/** An admin whose describeTopics answers, fails or hangs as the test says: the probe's timing is under test. */
function scriptedAdmin() {
  const pending: Array<{ resolve(): void; reject(error: Error): void }> = [];
  const admin = {
    describeTopics: () =>
      new Promise<[]>((resolve, reject) => pending.push({ resolve: () => resolve([]), reject })),
  } as unknown as Admin;
  return { admin, pending };
}

describe('BrokerProbe', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('is unreachable until an answer, turns unreachable on a timeout or an error, and back on an answer', async () => {
    vi.useFakeTimers();
    const { admin, pending } = scriptedAdmin();
    const changes: boolean[] = [];
    const probe = new BrokerProbe({
      admin,
      topic: 't',
      intervalMs: 60_000,
      timeoutMs: 50,
      onChange: (reachable) => changes.push(reachable),
    });
    expect(probe.reachable).toBe(false);
    const first = probe.probe();
    pending.shift()?.resolve();
    await first;
    expect(probe.reachable).toBe(true);

    // A probe that hangs past the timeout marks Kafka unreachable, and no second probe is sent meanwhile.
    const hanging = probe.probe();
    expect(probe.probe()).toBe(hanging);
    await vi.advanceTimersByTimeAsync(60);
    expect(probe.reachable).toBe(false);
    expect(pending).toHaveLength(1);
    pending.shift()?.resolve();
    await hanging;
    expect(probe.reachable).toBe(true);

    const failing = probe.probe();
    pending.shift()?.reject(new Error('connection refused'));
    await failing;
    expect(probe.reachable).toBe(false);
    expect(changes).toEqual([true, false, true, false]);
  });
});
