import type { AcceptedMessage, BatchState, FinishedMessage, StartedMessage } from '@sluice/contracts';
import { codecs } from '@sluice/contracts';
import { describe, expect, it } from 'vitest';
import {
  applyClock,
  applyProgress,
  clockDueAt,
  retainedClosed,
  type Transition,
} from '../src/batch-reducer.ts';

const settings = { closedRetentionMs: 60_000, orphanTimeoutMs: 3_600_000 };
const accepted = (ids: string[], overrides: Partial<AcceptedMessage> = {}): AcceptedMessage => ({
  kind: 'accepted',
  batchId: 'b1',
  tenant: 'acme',
  route: 'orders',
  single: ids.length === 1 && ids[0] === 'b1',
  ids,
  acceptedAt: 1_000,
  deadlineAt: 10_000,
  ...overrides,
});
const started = (id: string): StartedMessage => ({
  kind: 'started',
  id,
  batchId: 'b1',
  tenant: 'acme',
  route: 'orders',
  acceptedAt: 1_000,
  startedAt: 1_100,
});
const finished = (id: string, status: FinishedMessage['status'] = 'succeeded'): FinishedMessage => ({
  kind: 'finished',
  id,
  batchId: 'b1',
  tenant: 'acme',
  route: 'orders',
  acceptedAt: 1_000,
  status,
  attempts: [{ number: 1, startedAt: 1_100, durationMs: 5, status: 200 }],
  result: { status: 200, headers: {}, body: 'ok' },
  startedAt: 1_100,
  finishedAt: 1_200,
});

/** Applies messages in order with increasing offsets, carrying the state as the aggregator does. */
function run(messages: Array<AcceptedMessage | StartedMessage | FinishedMessage>, start?: BatchState) {
  let state = start;
  const outputs: Transition[] = [];
  messages.forEach((message, index) => {
    const transition = applyProgress(
      state,
      message,
      BigInt(index + Number(start?.appliedOffset ?? -1) + 1),
      2_000,
    );
    outputs.push(transition);
    if (transition.state !== undefined) state = transition.state ?? undefined;
  });
  return {
    state,
    statuses: outputs.flatMap((t) => t.statuses),
    completions: outputs.flatMap((t) => t.completions),
    duplicates: outputs.filter((t) => t.duplicateResult !== undefined).length,
  };
}

describe('applyProgress', () => {
  it('completes a batch when every request is terminal, with one completion per request and one for the batch', () => {
    const { state, statuses, completions } = run([
      accepted(['r1', 'r2'], { callback: { url: 'https://hooks.example/b' } }),
      started('r1'),
      finished('r1'),
      finished('r2', 'failed'),
    ]);
    expect(state?.phase).toBe('closed');
    expect(statuses.map((s) => `${s.id}:${s.status}`)).toEqual([
      'r1:processing',
      'r1:succeeded',
      'r2:failed',
    ]);
    expect(completions.map((c) => c.kind)).toEqual(['request', 'request', 'batch']);
    const batch = completions.at(-1);
    expect(batch).toMatchObject({
      kind: 'batch',
      counts: { succeeded: 1, failed: 1 },
      callback: { url: 'https://hooks.example/b' },
    });
    // A batch's callback gets the batch completion only.
    expect(completions.filter((c) => c.kind === 'request').every((c) => c.callback === undefined)).toBe(true);
  });

  it("gives a single request's completion its callback and no batch completion", () => {
    const { completions } = run([
      accepted(['b1'], { callback: { url: 'https://hooks.example/r' } }),
      finished('b1'),
    ]);
    expect(completions).toHaveLength(1);
    expect(completions[0]).toMatchObject({
      kind: 'request',
      id: 'b1',
      callback: { url: 'https://hooks.example/r' },
    });
  });

  it('keeps the first terminal status of a request and ignores later results for it, counting them', () => {
    const { statuses, state, duplicates } = run([
      accepted(['r1', 'r2']),
      finished('r1', 'succeeded'),
      finished('r1', 'dead'),
      started('r1'),
    ]);
    expect(statuses.map((s) => s.status)).toEqual(['succeeded']);
    expect(state?.items.r1?.status).toBe('succeeded');
    expect(duplicates).toBe(1);
  });

  it('counts a second result of a request of a closed batch as a duplicate', () => {
    const { state } = run([accepted(['b1']), finished('b1')]);
    const again = applyProgress(state, finished('b1'), 10n, 3_000);
    expect(again.duplicateResult).toEqual({ route: 'orders' });
    expect(again.statuses).toEqual([]);
  });

  it('stamps the redrive generation of a batch on every status it writes', () => {
    const { statuses } = run([accepted(['r1', 'r2'], { generation: 2 }), started('r1'), finished('r1')]);
    expect(statuses.map((s) => s.generation)).toEqual([2, 2]);
    const expired = applyClock(
      run([accepted(['r1'], { generation: 1 })]).state as BatchState,
      20_000,
      settings,
    );
    expect(expired.statuses.map((s) => `${s.status}:${s.generation}`)).toEqual(['expired:1']);
  });

  it('holds results that arrive before their batch is announced and applies them when it is', () => {
    const { state, statuses, completions } = run([
      finished('r1'),
      started('r2'),
      accepted(['r1', 'r2']),
      finished('r2'),
    ]);
    expect(state?.phase).toBe('closed');
    expect(statuses.map((s) => `${s.id}:${s.status}`)).toEqual([
      'r1:succeeded',
      'r2:processing',
      'r2:succeeded',
    ]);
    expect(completions.filter((c) => c.kind === 'batch')).toHaveLength(1);
  });

  it('skips a replayed record at or below the applied offset', () => {
    const first = applyProgress(undefined, accepted(['r1', 'r2']), 5n, 2_000);
    const state = first.state as BatchState;
    const replay = applyProgress(state, finished('r1'), 5n, 2_000);
    expect(replay).toEqual({ state: undefined, statuses: [], completions: [] });
    const fresh = applyProgress(state, finished('r1'), 6n, 2_000);
    expect(fresh.statuses).toHaveLength(1);
    expect(fresh.state?.appliedOffset).toBe('6');
  });

  it('ignores results for a closed batch and for ids it does not have', () => {
    const { state } = run([accepted(['b1']), finished('b1')]);
    const late = applyProgress(state, finished('b1', 'dead'), 10n, 3_000);
    expect(late.statuses).toEqual([]);
    const stranger = run([accepted(['r1', 'r2']), finished('r9')]);
    expect(stranger.statuses).toEqual([]);
  });

  it('keeps only what recognises repeats once a batch is closed, and still counts and ignores them', () => {
    const ids = Array.from({ length: 50 }, (_, i) => `r${i}`);
    let state: BatchState | undefined;
    let offset = 0n;
    for (const message of [
      accepted(ids, { callback: { url: 'https://hooks.example/b1' } }),
      ...ids.map((id) => finished(id)),
    ]) {
      const transition = applyProgress(state, message, offset, 2_000);
      offset += 1n;
      if (transition.state) state = transition.state;
    }
    const closed = state as BatchState;
    expect(closed.phase).toBe('closed');
    const retained = retainedClosed(closed);
    expect(retained).toMatchObject({ batchId: 'b1', tenant: 'acme', phase: 'closed', ids: [], items: {} });
    expect(retained.callback).toBeUndefined();
    expect(retained.closedAt).toBe(closed.closedAt);
    expect(retained.appliedOffset).toBe(closed.appliedOffset);
    expect(codecs.batchState.decode(codecs.batchState.encode(retained)).ok).toBe(true);
    const size = (value: BatchState) => codecs.batchState.encode(value).value.length;
    expect(size(retained)).toBeLessThan(300);
    expect(size(retained)).toBeLessThan(size(closed) / 10);
    // A repeated result of any of its requests: counted as a duplicate, nothing written.
    const again = applyProgress(retained, finished('r7'), offset, 3_000);
    expect(again).toMatchObject({
      state: undefined,
      statuses: [],
      completions: [],
      duplicateResult: { route: 'orders' },
    });
    expect(applyProgress(retained, started('r7'), offset, 3_000).duplicateResult).toBeUndefined();
    // And it is still forgotten after its retention.
    expect(applyClock(retained, (closed.closedAt as number) + 60_000, settings).state).toBeNull();
  });

  it('does not write state for a started record', () => {
    const open = applyProgress(undefined, accepted(['r1', 'r2']), 0n, 2_000).state as BatchState;
    const transition = applyProgress(open, started('r1'), 1n, 2_000);
    expect(transition.state).toBeUndefined();
    expect(transition.statuses.map((s) => s.status)).toEqual(['processing']);
  });
});

describe('applyClock', () => {
  it('expires the requests without a result at the deadline and completes the batch', () => {
    const { state } = run([accepted(['r1', 'r2', 'r3']), finished('r1')]);
    expect(applyClock(state as BatchState, 9_999, settings).state).toBeUndefined();
    const transition = applyClock(state as BatchState, 10_000, settings);
    expect(transition.state?.phase).toBe('closed');
    expect(transition.statuses.map((s) => `${s.id}:${s.status}`)).toEqual(['r2:expired', 'r3:expired']);
    expect(transition.statuses[0]?.error?.code).toBe('DEADLINE_PASSED');
    expect(transition.completions.at(-1)).toMatchObject({
      kind: 'batch',
      counts: { succeeded: 1, expired: 2 },
    });
  });

  it('forgets a closed batch after its retention and orphans after their timeout', () => {
    const closed = run([accepted(['b1']), finished('b1')]).state as BatchState;
    expect(applyClock(closed, 2_000 + 59_999, settings).state).toBeUndefined();
    expect(applyClock(closed, 2_000 + 60_000, settings).state).toBeNull();
    const orphan = run([finished('r1')]).state as BatchState;
    expect(orphan.phase).toBe('awaiting-accept');
    expect(applyClock(orphan, 2_000 + 3_600_000, settings).state).toBeNull();
  });

  it('acts exactly when clockDueAt says, in every phase, and never on an open batch without a deadline', () => {
    const states = [
      run([accepted(['r1', 'r2']), finished('r1')]).state,
      run([accepted(['b1']), finished('b1')]).state,
      run([finished('r1')]).state,
    ] as BatchState[];
    expect(states.map((state) => state.phase)).toEqual(['open', 'closed', 'awaiting-accept']);
    for (const state of states) {
      const due = clockDueAt(state, settings) as number;
      expect(applyClock(state, due - 1, settings).state, state.phase).toBeUndefined();
      expect(applyClock(state, due, settings).state, state.phase).not.toBeUndefined();
    }
    const endless = run([accepted(['r1'], { deadlineAt: undefined })]).state as BatchState;
    expect(clockDueAt(endless, settings)).toBeUndefined();
    expect(applyClock(endless, Number.MAX_SAFE_INTEGER, settings).state).toBeUndefined();
  });
});
