import {
  type BatchCompletion,
  type BatchState,
  type FinishedMessage,
  type ProgressMessage,
  type RequestCompletion,
  type StartedMessage,
  type StatusMessage,
  type TerminalStatus,
  terminalStatuses,
} from '@sluice/contracts';

export interface ReducerSettings {
  /** How long a completed batch is remembered, so that replays and duplicates of its results are ignored. */
  closedRetentionMs: number;
  /** How long results wait for their batch's announcement before they are dropped as orphans. */
  orphanTimeoutMs: number;
}

/** What applying an event produced: the new state (null: delete it) and the records to write. */
export interface Transition {
  /** Undefined: unchanged, write nothing. Null: forget the batch (a tombstone). */
  state: BatchState | null | undefined;
  statuses: StatusMessage[];
  completions: Array<RequestCompletion | BatchCompletion>;
  /**
   * A result for a request that already had one: a repeated upstream call (a worker died after calling and
   * before committing) or a repeated produce. Counted, never applied.
   */
  duplicateResult?: { route: string };
}

const unchanged = (): Transition => ({ state: undefined, statuses: [], completions: [] });

/**
 * The aggregator's decisions, as a pure function of a batch's state and one event. A request gets exactly one
 * terminal status: the first result for it wins, later ones (retries of the producer, replays after a crash)
 * are ignored, and at the batch's deadline every request still without a result is marked expired. Results
 * that arrive before their batch's announcement (possible when the two were produced to different brokers)
 * wait in the state until it comes.
 */
export function applyProgress(
  current: BatchState | undefined,
  message: ProgressMessage,
  offset: bigint,
  now: number,
  /** The W3C trace context of the record, kept with the batch (announcement) or the item (result). */
  traceparent?: string,
): Transition {
  if (current !== undefined && offset <= BigInt(current.appliedOffset)) return unchanged();
  const transition = apply(current, message, now, traceparent);
  // Only a changed state is written; it records the offset so that a replay of this record is skipped.
  if (transition.state === undefined || transition.state === null) return transition;
  return { ...transition, state: { ...transition.state, appliedOffset: offset.toString() } };
}

function apply(
  current: BatchState | undefined,
  message: ProgressMessage,
  now: number,
  traceparent: string | undefined,
): Transition {
  switch (message.kind) {
    case 'accepted': {
      if (current !== undefined && current.phase !== 'awaiting-accept') return unchanged();
      let state: BatchState = {
        batchId: message.batchId,
        tenant: message.tenant,
        phase: 'open',
        route: message.route,
        single: message.single,
        ids: message.ids,
        acceptedAt: message.acceptedAt,
        deadlineAt: message.deadlineAt,
        ...(message.callback !== undefined ? { callback: message.callback } : {}),
        ...(message.generation !== undefined ? { generation: message.generation } : {}),
        items: {},
        early: [],
        appliedOffset: current?.appliedOffset ?? '-1',
        createdAt: current?.createdAt ?? now,
        revision: current?.revision ?? 0,
        ...(traceparent !== undefined ? { traceparent } : {}),
      };
      const statuses: StatusMessage[] = [];
      const completions: Transition['completions'] = [];
      for (const early of current?.early ?? []) {
        const replayed = apply(state, early, now, undefined);
        if (replayed.state) state = replayed.state;
        statuses.push(...replayed.statuses);
        completions.push(...replayed.completions);
      }
      return { state, statuses, completions };
    }
    case 'started':
    case 'finished': {
      if (current === undefined || current.phase === 'awaiting-accept') {
        const waiting: BatchState = current ?? {
          batchId: message.batchId,
          tenant: message.tenant,
          phase: 'awaiting-accept',
          ids: [],
          items: {},
          early: [],
          appliedOffset: '-1',
          createdAt: now,
          revision: 0,
        };
        return { state: { ...waiting, early: [...waiting.early, message] }, statuses: [], completions: [] };
      }
      if (current.phase === 'closed') {
        // Every item of a closed batch is terminal, so any result for it is a repeat; what a closed batch keeps
        // (retainedClosed) is just enough to know that.
        return message.kind === 'finished'
          ? { ...unchanged(), duplicateResult: { route: current.route ?? message.route } }
          : unchanged();
      }
      const known = current.ids.includes(message.id);
      if (known && message.kind === 'finished' && current.items[message.id] !== undefined) {
        return { ...unchanged(), duplicateResult: { route: current.route ?? message.route } };
      }
      if (!known || current.items[message.id] !== undefined) return unchanged();
      return message.kind === 'started'
        ? started(current, message, now)
        : finished(current, message, now, traceparent);
    }
    default:
      return assertNever(message);
  }
}

function started(state: BatchState, message: StartedMessage, now: number): Transition {
  // A status, not a state change: the state only keeps terminal items.
  return {
    state: undefined,
    statuses: [
      {
        ...statusBase(state, message.id, message.acceptedAt, message.idempotency),
        status: 'processing',
        attempts: 0,
        timings: { acceptedAt: message.acceptedAt, startedAt: message.startedAt },
        updatedAt: now,
      },
    ],
    completions: [],
  };
}

function finished(
  state: BatchState,
  message: FinishedMessage,
  now: number,
  traceparent: string | undefined,
): Transition {
  const status: StatusMessage = {
    ...statusBase(state, message.id, message.acceptedAt, message.idempotency),
    status: message.status,
    attempts: message.attempts.length,
    ...(message.result !== undefined ? { result: message.result } : {}),
    ...(message.error !== undefined ? { error: message.error } : {}),
    timings: {
      acceptedAt: message.acceptedAt,
      ...(message.startedAt !== undefined ? { startedAt: message.startedAt } : {}),
      finishedAt: message.finishedAt,
    },
    updatedAt: now,
  };
  const next: BatchState = {
    ...state,
    items: {
      ...state.items,
      [message.id]: {
        status: message.status,
        ...(message.result !== undefined ? { httpStatus: message.result.status } : {}),
        finishedAt: message.finishedAt,
        ...(traceparent !== undefined ? { traceparent } : {}),
      },
    },
  };
  return completeIfDone(next, [status], now);
}

/**
 * Periodic check of one batch: past its deadline, every request without a result is expired and the batch
 * completes; closed batches and orphaned results are forgotten after their retention.
 */
/**
 * When the clock next changes this state (what {@link applyClock} acts on), or undefined when only a record can:
 * an announcement awaited too long is dropped, a closed batch is forgotten after its retention, an open one
 * expires at its deadline. The clock sweep visits a batch only once this time has come.
 */
export function clockDueAt(state: BatchState, settings: ReducerSettings): number | undefined {
  switch (state.phase) {
    case 'awaiting-accept':
      return state.createdAt + settings.orphanTimeoutMs;
    case 'closed':
      return (state.closedAt ?? state.createdAt) + settings.closedRetentionMs;
    case 'open':
      return state.deadlineAt;
    default:
      return assertNever(state.phase);
  }
}

export function applyClock(state: BatchState, now: number, settings: ReducerSettings): Transition {
  const due = clockDueAt(state, settings);
  if (due === undefined || due > now) return unchanged();
  switch (state.phase) {
    case 'awaiting-accept':
    case 'closed':
      return { state: null, statuses: [], completions: [] };
    case 'open': {
      const items = { ...state.items };
      const statuses: StatusMessage[] = [];
      for (const id of state.ids) {
        if (items[id] !== undefined) continue;
        items[id] = { status: 'expired', finishedAt: now };
        statuses.push({
          ...statusBase(state, id, state.acceptedAt ?? now, undefined),
          status: 'expired',
          attempts: 0,
          error: {
            code: 'DEADLINE_PASSED',
            message: 'the batch deadline passed before this request finished',
          },
          timings: { acceptedAt: state.acceptedAt ?? now, finishedAt: now },
          updatedAt: now,
        });
      }
      return completeIfDone({ ...state, items }, statuses, now);
    }
    default:
      return assertNever(state.phase);
  }
}

function completeIfDone(state: BatchState, statuses: StatusMessage[], now: number): Transition {
  const completions: Transition['completions'] = statuses
    .filter((status) => status.status !== 'processing' && status.status !== 'queued')
    .map((status) => ({
      kind: 'request',
      tenant: state.tenant,
      batchId: state.batchId,
      id: status.id,
      // A single request's callback gets this completion; a batch's callback gets the batch completion.
      ...(state.single && state.callback !== undefined ? { callback: state.callback } : {}),
      status,
    }));
  const done = state.ids.every((id) => state.items[id] !== undefined);
  if (!done) return { state, statuses, completions };
  const closed: BatchState = { ...state, phase: 'closed', closedAt: now, early: [] };
  if (!state.single) completions.push(batchCompletion(closed, now));
  return { state: closed, statuses, completions };
}

/**
 * What a closed batch keeps in memory and in the changelog for its retention: its identity, phase, clock and
 * offsets, without its ids, items, callback or trace contexts. Its results are all in, so a result arriving later
 * is a repeat whoever it is for, and the completion was written from the whole state when it closed. About 0.2 KB
 * instead of 0.7 KB for a single request, and for a batch of n instead of growing with n.
 */
export function retainedClosed(state: BatchState): BatchState {
  return {
    batchId: state.batchId,
    tenant: state.tenant,
    phase: 'closed',
    ...(state.route !== undefined ? { route: state.route } : {}),
    ...(state.single !== undefined ? { single: state.single } : {}),
    ids: [],
    items: {},
    early: [],
    appliedOffset: state.appliedOffset,
    createdAt: state.createdAt,
    ...(state.closedAt !== undefined ? { closedAt: state.closedAt } : {}),
    ...(state.generation !== undefined ? { generation: state.generation } : {}),
    revision: state.revision,
  };
}

function batchCompletion(state: BatchState, now: number): BatchCompletion {
  const counts = Object.fromEntries(terminalStatuses.map((s) => [s, 0])) as Record<TerminalStatus, number>;
  const items = state.ids.map((id) => {
    const item = state.items[id];
    const status = item?.status ?? 'expired';
    counts[status] += 1;
    return { id, status, ...(item?.httpStatus !== undefined ? { httpStatus: item.httpStatus } : {}) };
  });
  return {
    kind: 'batch',
    tenant: state.tenant,
    batchId: state.batchId,
    route: state.route ?? '',
    ...(state.callback !== undefined ? { callback: state.callback } : {}),
    acceptedAt: state.acceptedAt ?? state.createdAt,
    completedAt: now,
    counts,
    items,
  };
}

function statusBase(
  state: BatchState,
  id: string,
  acceptedAt: number,
  idempotency: StatusMessage['idempotency'],
) {
  return {
    id,
    batchId: state.batchId,
    single: state.single ?? false,
    tenant: state.tenant,
    route: state.route ?? '',
    ...(idempotency !== undefined ? { idempotency } : {}),
    ...(state.generation !== undefined ? { generation: state.generation } : {}),
    timings: { acceptedAt },
  };
}

function assertNever(value: never): never {
  throw new Error(`unhandled case: ${JSON.stringify(value)}`);
}
