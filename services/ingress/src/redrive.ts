import {
  codecs,
  type DeadLetterMessage,
  type DeadLetterReason,
  type RequestMessage,
  type StatusMessage,
} from '@sluice/contracts';
import { type KafkaClient, TableReader } from '@sluice/kafka';
import type { StateStore } from '@sluice/state';
import { redriveFilter } from './api-schemas.ts';
import type { PlannedBatch } from './plan.ts';
import { validationProblem } from './problems.ts';

/** Which dead-lettered requests to send again; every given field must match. */
export interface RedriveFilter {
  ids?: string[];
  tenant?: string;
  route?: string;
  reason?: DeadLetterReason;
  /** Dead-lettered at or after this instant (epoch ms). */
  after?: number;
  /** Dead-lettered before this instant (epoch ms). */
  before?: number;
  /** At most this many, oldest dead letters first. */
  limit: number;
}

/** A dead letter that holds a whole request, so it can be sent again. */
export interface DeadRequest {
  request: RequestMessage;
  deadLetter: DeadLetterMessage;
}

export type RedriveSkip =
  /** Its latest status is not `dead`: it succeeded meanwhile, or was redriven already and is under way. */
  | 'not-dead'
  /** Another redrive of the same generation won (two admins at once). */
  | 'already-redriven'
  /** No status is known for it any more (past the status retention). */
  | 'status-unknown';

export interface RedriveOutcome {
  redriven: Array<{ id: string; batchId: string; generation: number }>;
  skipped: Array<{ id: string; reason: RedriveSkip; status?: string }>;
}

/** Whether a dead letter matches a filter. Pure. */
export function matchesFilter(dead: DeadRequest, filter: Omit<RedriveFilter, 'limit'>): boolean {
  const { request, deadLetter } = dead;
  if (filter.ids !== undefined && !filter.ids.includes(request.id)) return false;
  if (filter.tenant !== undefined && request.tenant !== filter.tenant) return false;
  if (filter.route !== undefined && request.route !== filter.route) return false;
  if (filter.reason !== undefined && deadLetter.reason !== filter.reason) return false;
  if (filter.after !== undefined && deadLetter.deadLetteredAt < filter.after) return false;
  if (filter.before !== undefined && deadLetter.deadLetteredAt >= filter.before) return false;
  return true;
}

/** The request inside a dead letter, when the dead-lettered record was a request (not a poison record). */
export function deadRequestOf(deadLetter: DeadLetterMessage): DeadRequest | undefined {
  const { original } = deadLetter;
  if (original.value === null) return undefined;
  const decoded = codecs.request.decode({
    value: Buffer.from(original.value, 'base64'),
    headers: original.headers,
  });
  return decoded.ok ? { request: decoded.value, deadLetter } : undefined;
}

/**
 * The batch that sends a dead request again: the same id, a batch of its own (`<id>.r<generation>`), the next
 * generation (so its statuses replace the `dead` one), a fresh try budget and a deadline as long as the first
 * one was, counted from now. The earlier tries stay with the request as history. Pure.
 */
export function redriveBatch(
  request: RequestMessage,
  status: StatusMessage,
  generation: number,
  now: number,
  by: string,
): PlannedBatch {
  const batchId = `${request.id}.r${generation}`;
  const deadlineAt = now + Math.max(0, request.deadlineAt - request.acceptedAt);
  const message: RequestMessage = {
    ...request,
    batchId,
    batchSize: 1,
    deadlineAt,
    attempts: [],
    redrive: {
      generation,
      originalBatchId: request.redrive?.originalBatchId ?? request.batchId,
      redrivenAt: now,
      by,
      previousAttempts: [...(request.redrive?.previousAttempts ?? []), ...request.attempts],
    },
  };
  const queued: StatusMessage = {
    id: request.id,
    batchId,
    single: true,
    tenant: request.tenant,
    route: request.route,
    status: 'queued',
    attempts: 0,
    timings: { acceptedAt: request.acceptedAt },
    ...(status.idempotency !== undefined ? { idempotency: status.idempotency } : {}),
    generation,
    updatedAt: now,
  };
  return {
    batchId,
    single: true,
    route: request.route,
    requests: [{ message, status: queued }],
    accepted: {
      kind: 'accepted',
      batchId,
      tenant: request.tenant,
      route: request.route,
      single: true,
      ids: [request.id],
      acceptedAt: request.acceptedAt,
      deadlineAt,
      ...(request.callback !== undefined ? { callback: request.callback } : {}),
      generation,
    },
  };
}

export interface RedriverDeps {
  kafka: KafkaClient;
  /** The dead-letter topic (prefix applied). */
  topic: string;
  /** A fresh group name for one read of the topic. */
  groupId(): string;
  store: StateStore;
  /** Produces a planned batch (request, queued status, announcement) with acks=all and applies its status. */
  enqueue(batch: PlannedBatch): Promise<void>;
  now?: () => number;
}

/** How long a redrive claim is remembered; longer than any dead letter is kept. */
const claimTtlMs = 31 * 24 * 60 * 60 * 1000;

/**
 * Sends dead-lettered requests again. The dead-letter topic is read once per call, start to end (an operator's
 * action, rare, and the topic stays small while a deployment is healthy), so the ingress keeps no copy of
 * dead requests in memory. The latest dead letter of a request is the one that counts.
 */
export class Redriver {
  readonly #deps: RedriverDeps;

  constructor(deps: RedriverDeps) {
    this.#deps = deps;
  }

  /** Dead requests matching the filter, oldest dead letter first, at most `limit`. */
  async find(filter: RedriveFilter): Promise<DeadRequest[]> {
    const latest = new Map<string, DeadRequest>();
    const reader = new TableReader({
      client: this.#deps.kafka,
      topic: this.#deps.topic,
      groupId: this.#deps.groupId(),
      apply: (record) => {
        if (record.value === null) return;
        const decoded = codecs.deadLetter.decode(record);
        if (!decoded.ok) return;
        const dead = deadRequestOf(decoded.value);
        if (dead === undefined || !matchesFilter(dead, filter)) return;
        const previous = latest.get(dead.request.id);
        if (previous === undefined || previous.deadLetter.deadLetteredAt <= dead.deadLetter.deadLetteredAt) {
          latest.set(dead.request.id, dead);
        }
      },
    });
    try {
      await reader.start();
    } finally {
      await reader.close();
    }
    return [...latest.values()]
      .sort((a, b) => a.deadLetter.deadLetteredAt - b.deadLetter.deadLetteredAt)
      .slice(0, filter.limit);
  }

  /** Redrives each request whose latest status is still `dead`; the others are reported as skipped. */
  async redrive(found: DeadRequest[], by: string): Promise<RedriveOutcome> {
    const outcome: RedriveOutcome = { redriven: [], skipped: [] };
    for (const { request } of found) {
      const status = await this.#deps.store.getStatus(request.id);
      if (status === undefined) {
        outcome.skipped.push({ id: request.id, reason: 'status-unknown' });
        continue;
      }
      if (status.status !== 'dead') {
        outcome.skipped.push({ id: request.id, reason: 'not-dead', status: status.status });
        continue;
      }
      const generation = (status.generation ?? 0) + 1;
      const batch = redriveBatch(request, status, generation, (this.#deps.now ?? Date.now)(), by);
      // One winner per generation, across replicas sharing the store, when two operators redrive at once.
      const scope = { tenant: request.tenant, key: `\u0000redrive:${request.id}:${generation}` };
      const claim = await this.#deps.store.claimIdempotencyKey(scope, 'redrive', batch.batchId, claimTtlMs);
      if (claim.outcome !== 'claimed') {
        outcome.skipped.push({ id: request.id, reason: 'already-redriven' });
        continue;
      }
      try {
        await this.#deps.enqueue(batch);
      } catch (error) {
        await this.#deps.store.releaseIdempotencyKey(scope, batch.batchId);
        throw error;
      }
      outcome.redriven.push({ id: request.id, batchId: batch.batchId, generation });
    }
    return outcome;
  }
}

/** POST /v1/redrives: validates the filter, finds the matching dead requests and redrives them (or lists them). */
export async function redriveBy(redriver: Redriver, body: unknown, by: string) {
  const parsed = redriveFilter.safeParse(body ?? {});
  if (!parsed.success) throw validationProblem(parsed.error);
  const { deadLetteredAfter, deadLetteredBefore, dryRun, ...rest } = parsed.data;
  const found = await redriver.find({
    ...rest,
    ...(deadLetteredAfter !== undefined ? { after: Date.parse(deadLetteredAfter) } : {}),
    ...(deadLetteredBefore !== undefined ? { before: Date.parse(deadLetteredBefore) } : {}),
  });
  if (dryRun) {
    return { matched: found.length, dryRun, redriven: [], skipped: [], ids: found.map((d) => d.request.id) };
  }
  return { matched: found.length, dryRun, ...(await redriver.redrive(found, by)) };
}
