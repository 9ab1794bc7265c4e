import type { StatusMessage } from './status.ts';

/**
 * A request's status as clients see it everywhere (status lookups, webhooks, result topics): times in ISO 8601,
 * no internal fields such as the tenant or the idempotency fingerprint.
 */
export interface PublicStatus {
  id: string;
  batchId: string;
  route: string;
  status: StatusMessage['status'];
  attempts: number;
  result?: StatusMessage['result'];
  error?: StatusMessage['error'];
  /** The redrive generation, when the request was sent again after it ended dead. */
  redrives?: number;
  timings: { acceptedAt: string; startedAt?: string; finishedAt?: string };
}

export function publicStatus(status: StatusMessage): PublicStatus {
  const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
  const startedAt = iso(status.timings.startedAt);
  const finishedAt = iso(status.timings.finishedAt);
  return {
    id: status.id,
    batchId: status.batchId,
    route: status.route,
    status: status.status,
    attempts: status.attempts,
    ...(status.result !== undefined ? { result: status.result } : {}),
    ...(status.error !== undefined ? { error: status.error } : {}),
    ...(status.generation !== undefined && status.generation > 0 ? { redrives: status.generation } : {}),
    timings: {
      acceptedAt: iso(status.timings.acceptedAt) as string,
      ...(startedAt !== undefined ? { startedAt } : {}),
      ...(finishedAt !== undefined ? { finishedAt } : {}),
    },
  };
}
