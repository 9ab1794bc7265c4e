import {
  type consumerGroups,
  type DeadLetterReason,
  groupName,
  isTerminal,
  recordHeaders,
  type StatusMessage,
  type TopicId,
  tenantResultTopicName,
} from '@sluice/contracts';
import { type RecordingServer, type ServiceProcess, waitFor } from '@sluice/testkit';
import { readTopic, type Stack, type StatusDocument, statusHistory, statusOf } from './harness.ts';

/** How one request must end; what is left out may be anything terminal. */
export interface Expected {
  status?: 'succeeded' | 'failed' | 'expired' | 'dead';
  errorCode?: string;
  attempts?: number;
  /** The HTTP status of the upstream's last answer, kept as the result. */
  httpStatus?: number;
  /** A dead letter of the request with this reason must be on the dead-letter topic. */
  deadLetter?: DeadLetterReason;
}

export interface AuditOptions {
  /** Every request answered 202, with how it must end. */
  requests: Map<string, Expected>;
  /** Requests submitted on their own with a callback: request id → the callback's path at the receiver. */
  requestCallbacks?: Map<string, string>;
  /** Batches with a callback: batch id → the callback's path and the batch's request ids. */
  batchCallbacks?: Map<string, { path: string; ids: string[] }>;
  /** Where the callbacks went (the stack's receiver unless told). */
  receiver?: RecordingServer;
  /**
   * The request id of every upstream call, one entry per call (the Idempotency-Key the worker sends), read once
   * every request has ended. The stack's upstream's calls unless told; add those of other targets.
   */
  upstreamCallIds?: () => string[];
  /** Upstream calls beyond each request's recorded attempts allowed in all: the in-flight window of a crash. */
  maxDuplicateCalls: number;
  /**
   * When given, only these requests may have been called more often than their attempts (a set, or a test
   * evaluated once every request has ended).
   */
  duplicateWindow?: ReadonlySet<string> | ((id: string) => boolean);
  /** The test wrote unreadable records to the status topic itself: the history skips them. */
  skipUnreadableStatuses?: boolean;
  /** Aggregator instances whose duplicate-result counters are summed (the stack's running ones unless told). */
  aggregators?: ServiceProcess[];
  timeoutMs?: number;
}

export interface AuditReport {
  requests: number;
  byStatus: Record<string, number>;
  upstreamCalls: number;
  /** Calls beyond the attempts the requests' terminal statuses record: repeated by at-least-once. */
  duplicateCalls: number;
  duplicatedRequests: string[];
  resultEvents: number;
  resultDuplicates: number;
  /** Calls at the callbacks' paths, and those beyond one per completion (re-deliveries, tries after a refusal). */
  webhooks: number;
  webhookDuplicates: number;
  /** The aggregators' sluice_request_duplicate_results_total, summed. */
  aggregatorDuplicateResults: number;
  /** Each request's first terminal status record. */
  statuses: Map<string, StatusMessage>;
  /** How long the status lookups took to agree with the status topic (once every request had ended). */
  lookupLagMs: number;
  /** Every way the run broke the rules; empty when the audit holds. */
  problems: string[];
}

const terminalOf = (statuses: StatusMessage[]) => statuses.filter((status) => isTerminal(status.status));

/**
 * The audit every fault scenario ends with. Waits (with a deadline) until every accepted request has a terminal
 * status on the status topic and has reached the tenant's result topic and its callback, then checks:
 * - the status topic's whole history: no request has two different terminal statuses, and its last record is
 *   terminal (and the one expected);
 * - the status lookups, the result topic and the webhooks tell the same status as the history;
 * - upstream calls: never fewer than the attempts recorded, and repeats only within the allowed window.
 * Duplicates on the result topic and of webhooks are counted, not failed: delivery is at least once.
 */
export async function audit(stack: Stack, options: AuditOptions): Promise<AuditReport> {
  const timeoutMs = options.timeoutMs ?? 120_000;
  const ids = [...options.requests.keys()];
  const problems: string[] = [];

  const history = await waitFor(
    `${ids.length} requests to reach a terminal status`,
    async () => {
      const all = await statusHistory(stack, { skipUnreadable: options.skipUnreadableStatuses ?? false });
      return ids.every((id) => terminalOf(all.get(id) ?? []).length > 0) && all;
    },
    { timeoutMs, intervalMs: 1_000 },
  ).catch(async (error: unknown) => {
    const all = await statusHistory(stack, { skipUnreadable: options.skipUnreadableStatuses ?? false });
    const open = ids.filter((id) => terminalOf(all.get(id) ?? []).length === 0);
    throw new Error(
      `${open.length} of ${ids.length} requests never ended:\n${(await traceRequests(stack, open.slice(0, 5))).join('\n')}`,
      { cause: error },
    );
  });

  const final = new Map<string, StatusMessage>();
  const byStatus: Record<string, number> = {};
  for (const [id, expected] of options.requests) {
    const statuses = history.get(id) ?? [];
    const terminal = terminalOf(statuses);
    const distinct = [...new Set(terminal.map((status) => status.status))];
    if (distinct.length !== 1) problems.push(`${id}: terminal statuses ${distinct.join(', ')}`);
    const last = statuses.at(-1);
    if (last === undefined || !isTerminal(last.status)) {
      problems.push(`${id}: last status record is ${last?.status ?? '(none)'}`);
    }
    const first = terminal[0] as StatusMessage;
    final.set(id, first);
    byStatus[first.status] = (byStatus[first.status] ?? 0) + 1;
    problems.push(...unexpected(id, first, expected));
  }

  // Status lookups agree with the history. The ingress follows the status topic, so a lookup may lag behind it for
  // a moment (longer after a broker failure); it must catch up within the deadline.
  const lookupsFrom = Date.now();
  let disagreeing = ids;
  const describeLookup = (id: string, document: StatusDocument) => {
    const status = final.get(id) as StatusMessage;
    return document.status === status.status && document.attempts === status.attempts
      ? undefined
      : `${id}: lookup says ${document.status}/${document.attempts} tries, the status topic ${status.status}/${status.attempts}`;
  };
  let lookupProblems: string[] = [];
  await waitFor(
    'the status lookups to agree with the status topic',
    async () => {
      const documents = await mapLimited(disagreeing, 8, (id) => statusOf(stack, id));
      const still = disagreeing.flatMap((id, index) => {
        const problem = describeLookup(id, documents[index] as StatusDocument);
        return problem === undefined ? [] : [[id, problem] as const];
      });
      disagreeing = still.map(([id]) => id);
      lookupProblems = still.map(([, problem]) => problem);
      return disagreeing.length === 0;
    },
    { timeoutMs: Math.min(timeoutMs, 60_000), intervalMs: 500 },
  ).catch(() => problems.push(...lookupProblems));
  const lookupLagMs = Date.now() - lookupsFrom;

  // The tenant's result topic: every request at least once, always with its one status.
  const topic = tenantResultTopicName('acme', stack.prefix);
  const events = await waitFor(
    `every request on the result topic`,
    async () => {
      const byId = new Map<string, string[]>();
      for (const record of await readTopic(stack.kafka, topic)) {
        const id = record.key?.toString() ?? '';
        if (!options.requests.has(id)) continue;
        const data = JSON.parse(record.value?.toString() ?? '{}') as { status?: string };
        byId.set(id, [...(byId.get(id) ?? []), data.status ?? '(none)']);
      }
      return ids.every((id) => byId.has(id)) && byId;
    },
    { timeoutMs, intervalMs: 1_000 },
  );
  let resultEvents = 0;
  let resultDuplicates = 0;
  for (const [id, statuses] of events) {
    resultEvents += statuses.length;
    resultDuplicates += statuses.length - 1;
    const expected = final.get(id)?.status;
    if (statuses.some((status) => status !== expected)) {
      problems.push(`${id}: result topic says ${statuses.join(', ')}, the status topic ${expected}`);
    }
  }

  // Webhooks: each request's own, or its batch's, with the same status.
  const receiver = options.receiver ?? stack.receiver;
  const requestCallbacks = options.requestCallbacks ?? new Map<string, string>();
  const batchCallbacks = options.batchCallbacks ?? new Map<string, { path: string; ids: string[] }>();
  const hooks = await waitFor(
    'every callback',
    () => {
      const requestHooks = new Map<string, string[]>();
      const batchHooks = new Map<string, Array<Array<{ id: string; status: string }>>>();
      const paths = new Set([
        ...requestCallbacks.values(),
        ...[...batchCallbacks.values()].map((b) => b.path),
      ]);
      for (const call of receiver.calls) {
        if (!paths.has(call.path)) continue;
        const payload = JSON.parse(call.body.toString()) as {
          type: string;
          data: {
            id?: string;
            status?: string;
            batchId?: string;
            items?: Array<{ id: string; status: string }>;
          };
        };
        if (payload.type === 'request.completed' && payload.data.id !== undefined) {
          const id = payload.data.id;
          if (requestCallbacks.get(id) === call.path) {
            requestHooks.set(id, [...(requestHooks.get(id) ?? []), payload.data.status ?? '(none)']);
          }
        } else if (payload.type === 'batch.completed' && payload.data.batchId !== undefined) {
          const batchId = payload.data.batchId;
          if (batchCallbacks.get(batchId)?.path === call.path) {
            batchHooks.set(batchId, [...(batchHooks.get(batchId) ?? []), payload.data.items ?? []]);
          }
        }
      }
      const complete =
        [...requestCallbacks.keys()].every((id) => requestHooks.has(id)) &&
        [...batchCallbacks.keys()].every((batchId) => batchHooks.has(batchId));
      return complete && { requestHooks, batchHooks };
    },
    { timeoutMs, intervalMs: 500 },
  );
  let webhooks = 0;
  let webhookDuplicates = 0;
  for (const [id, statuses] of hooks.requestHooks) {
    webhooks += statuses.length;
    webhookDuplicates += statuses.length - 1;
    const expected = final.get(id)?.status;
    if (statuses.some((status) => status !== expected)) {
      problems.push(`${id}: webhooks say ${statuses.join(', ')}, the status topic ${expected}`);
    }
  }
  for (const [batchId, deliveries] of hooks.batchHooks) {
    webhooks += deliveries.length;
    webhookDuplicates += deliveries.length - 1;
    const batchIds = batchCallbacks.get(batchId)?.ids ?? [];
    for (const items of deliveries) {
      const told = new Map(items.map((item) => [item.id, item.status]));
      for (const id of batchIds) {
        if (!options.requests.has(id)) continue;
        if (told.get(id) !== final.get(id)?.status) {
          problems.push(
            `${id}: batch webhook says ${told.get(id)}, the status topic ${final.get(id)?.status}`,
          );
        }
      }
    }
  }

  // Upstream calls against the attempts each request's terminal status records.
  const callIds =
    options.upstreamCallIds?.() ??
    stack.upstream.calls.flatMap((call) => {
      const id = call.headers['idempotency-key'];
      return typeof id === 'string' ? [id] : [];
    });
  const calls = new Map<string, number>();
  for (const id of callIds) if (options.requests.has(id)) calls.set(id, (calls.get(id) ?? 0) + 1);
  const window = options.duplicateWindow;
  const inWindow = (id: string) =>
    window === undefined || (typeof window === 'function' ? window(id) : window.has(id));
  let upstreamCalls = 0;
  let duplicateCalls = 0;
  const duplicatedRequests: string[] = [];
  for (const id of ids) {
    const made = calls.get(id) ?? 0;
    const attempts = final.get(id)?.attempts ?? 0;
    upstreamCalls += made;
    if (made < attempts)
      problems.push(`${id}: ${attempts} attempts recorded, the upstream saw ${made} calls`);
    if (made > attempts) {
      duplicateCalls += made - attempts;
      duplicatedRequests.push(id);
      if (!inWindow(id)) {
        problems.push(
          `${id}: called ${made - attempts} more times than its attempts, outside the crash window`,
        );
      }
    }
  }
  if (duplicateCalls > options.maxDuplicateCalls) {
    problems.push(
      `${duplicateCalls} repeated upstream calls, more than the in-flight bound ${options.maxDuplicateCalls}`,
    );
  }

  // Dead requests that must have been dead-lettered, with their reason.
  const letters = [...options.requests].filter(([, expected]) => expected.deadLetter !== undefined);
  if (letters.length > 0) {
    const found = await waitFor(
      'the dead letters',
      async () => {
        const reasons = new Map<string, string[]>();
        for (const record of await readTopic(stack.kafka, stack.topic('deadLetters'))) {
          const id = record.headers[recordHeaders.requestId];
          const reason = record.headers[recordHeaders.deadLetterReason];
          if (id === undefined || reason === undefined || !options.requests.has(id)) continue;
          reasons.set(id, [...(reasons.get(id) ?? []), reason]);
        }
        return letters.every(([id]) => reasons.has(id)) && reasons;
      },
      { timeoutMs, intervalMs: 1_000 },
    );
    for (const [id, expected] of letters) {
      const reasons = found.get(id) ?? [];
      if (!reasons.every((reason) => reason === expected.deadLetter)) {
        problems.push(`${id}: dead-lettered for ${reasons.join(', ')}, expected ${expected.deadLetter}`);
      }
    }
  }

  const aggregators =
    options.aggregators ?? stack.instances('aggregator').filter((service) => service.running);
  let aggregatorDuplicateResults = 0;
  for (const aggregator of aggregators) {
    aggregatorDuplicateResults += await metricSum(aggregator, 'sluice_request_duplicate_results_total');
  }

  return {
    requests: ids.length,
    byStatus,
    upstreamCalls,
    duplicateCalls,
    duplicatedRequests,
    resultEvents,
    resultDuplicates,
    webhooks,
    webhookDuplicates,
    aggregatorDuplicateResults,
    statuses: final,
    lookupLagMs,
    problems,
  };
}

/**
 * The group's committed offset of every partition of the topics, read at once after a consumer was killed: until
 * the group hands the dead member's partitions to another, nothing moves them, so they mark where its work that
 * may be done again begins.
 */
export async function committedOffsets(
  stack: Stack,
  group: keyof typeof consumerGroups,
  topics: TopicId[],
): Promise<Map<string, bigint>> {
  const admin = stack.kafka.admin();
  try {
    const lags = await admin.groupLag(
      groupName(group, stack.prefix),
      topics.map((id) => stack.topic(id)),
    );
    return new Map(lags.map((lag) => [`${lag.topic}:${lag.partition}`, lag.committed]));
  } finally {
    await admin.close();
  }
}

/**
 * The requests whose records lie at or past their partition's committed offset at a crash: the work a consumer
 * may do again, because the group re-reads from the committed offset. With `calledBefore`, only those whose first
 * upstream call came before that instant (a killed worker called nothing after its death). With records committed
 * as a contiguous finished prefix, every repeated call must be one of them.
 */
export async function uncommittedWindow(
  stack: Stack,
  topics: TopicId[],
  committed: Map<string, bigint>,
  calledBefore = Number.POSITIVE_INFINITY,
): Promise<Set<string>> {
  const called = new Set<string>();
  for (const call of stack.upstream.calls) {
    const id = call.headers['idempotency-key'];
    if (call.at <= calledBefore && typeof id === 'string') called.add(id);
  }
  const window = new Set<string>();
  for (const id of topics) {
    for (const record of await readTopic(stack.kafka, stack.topic(id))) {
      const requestId = record.headers[recordHeaders.requestId];
      const from = committed.get(`${record.topic}:${record.partition}`) ?? -1n;
      if (requestId === undefined || record.offset < from) continue;
      if (calledBefore === Number.POSITIVE_INFINITY || called.has(requestId)) window.add(requestId);
    }
  }
  return window;
}

/**
 * Where requests stand on each topic, for the message of a failed audit: the records carrying their ids on the
 * request, retry, results, status and completion topics, and whether their batch's state (the aggregator's
 * changelog) holds them.
 */
export async function traceRequests(stack: Stack, ids: string[]): Promise<string[]> {
  const wanted = new Set(ids);
  const seen = new Map<string, string[]>(ids.map((id) => [id, []]));
  const batches = new Map<string, string>();
  const topics: TopicId[] = ['requests', 'requestRetries', 'results', 'status', 'completions', 'deadLetters'];
  for (const topic of topics) {
    for (const record of await readTopic(stack.kafka, stack.topic(topic))) {
      const id = record.headers[recordHeaders.requestId];
      if (id === undefined || !wanted.has(id)) continue;
      const batchId = record.headers[recordHeaders.batchId];
      if (batchId !== undefined) batches.set(id, batchId);
      const kind = record.headers[recordHeaders.kind] ?? '';
      const status =
        topic === 'status'
          ? (JSON.parse(record.value?.toString() ?? '{}') as { status?: string }).status
          : '';
      seen.get(id)?.push(`${topic}[${record.partition}@${record.offset}]${kind}${status ?? ''}`);
    }
  }
  const states = new Map<string, string>();
  for (const record of await readTopic(stack.kafka, stack.topic('batchState'))) {
    const batchId = record.key?.toString() ?? '';
    if (![...batches.values()].includes(batchId)) continue;
    const state = JSON.parse(record.value?.toString() ?? 'null') as {
      phase: string;
      revision: number;
      appliedOffset: string;
      items: Record<string, { status: string }>;
    } | null;
    states.set(
      batchId,
      state === null
        ? 'tombstone'
        : `${state.phase} r${state.revision} applied@${state.appliedOffset} items ${JSON.stringify(state.items)}`,
    );
  }
  return ids.map((id) => {
    const batchId = batches.get(id) ?? '(unknown batch)';
    return `${id}: ${(seen.get(id) ?? []).join(' ')}; batch ${batchId} state: ${states.get(batchId) ?? '(none)'}`;
  });
}

/** One line of figures for the test's output. */
export function describeAudit(name: string, report: AuditReport): string {
  const statuses = Object.entries(report.byStatus)
    .map(([status, count]) => `${count} ${status}`)
    .join(', ');
  return (
    `${name}: ${report.requests} requests (${statuses}); ${report.upstreamCalls} upstream calls, ` +
    `${report.duplicateCalls} repeated (${report.duplicatedRequests.length} requests), aggregator counted ` +
    `${report.aggregatorDuplicateResults} duplicate results; result topic ${report.resultEvents} events ` +
    `(${report.resultDuplicates} duplicates); ${report.webhooks} webhook calls (${report.webhookDuplicates} beyond one ` +
    `per completion); lookups agreed after ${report.lookupLagMs} ms`
  );
}

function unexpected(id: string, status: StatusMessage, expected: Expected): string[] {
  const problems: string[] = [];
  const differs = (what: string, actual: unknown, wanted: unknown) => {
    if (wanted !== undefined && actual !== wanted)
      problems.push(`${id}: ${what} ${actual}, expected ${wanted}`);
  };
  differs('status', status.status, expected.status);
  differs('error code', status.error?.code, expected.errorCode);
  differs('attempts', status.attempts, expected.attempts);
  differs('HTTP status', status.result?.status, expected.httpStatus);
  return problems;
}

/** The sum of a Prometheus counter's samples (every label set) on a service's /metrics; 0 when absent. */
export async function metricSum(service: ServiceProcess, name: string): Promise<number> {
  const text = await (await fetch(`${service.url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.split(' ').at(-1));
  }
  return sum;
}

async function mapLimited<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const index = next;
      next += 1;
      results[index] = await work(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}
