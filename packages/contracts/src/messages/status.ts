import { z } from 'zod';
import {
  epochMs,
  failure,
  httpResult,
  idempotency,
  isTerminal,
  requestStatuses,
  statusRank,
} from './common.ts';

/**
 * The latest status of a request, on the compacted `sluice.status.v1` keyed by request id. The ingress writes
 * `queued`; the aggregator writes every later status. Readers keep the record with the higher rank
 * ({@link statusRank}) so that a late `queued` never hides a terminal status; see {@link supersedes}.
 */
export const statusMessage = z.object({
  id: z.string(),
  batchId: z.string(),
  /** True when submitted on its own rather than in a batch. */
  single: z.boolean(),
  tenant: z.string(),
  route: z.string(),
  status: z.enum(requestStatuses),
  attempts: z.number().int().nonnegative(),
  result: httpResult.optional(),
  error: failure.optional(),
  timings: z.object({
    acceptedAt: epochMs,
    startedAt: epochMs.optional(),
    finishedAt: epochMs.optional(),
  }),
  idempotency: idempotency.optional(),
  /**
   * How many times the request was redriven after it ended dead (absent: 0). A status of a later generation
   * replaces any status of an earlier one, terminal or not; within a generation the rank decides.
   */
  generation: z.number().int().nonnegative().optional(),
  updatedAt: epochMs,
});
export type StatusMessage = z.infer<typeof statusMessage>;

/**
 * Whether `next` should replace `current` as a request's latest status: a later redrive generation always does;
 * within one generation the status further along does, or one as far along and newer (more attempts). A
 * terminal status is final within its generation: a second, different terminal record (a replay) never replaces
 * the first. Every store implements exactly this (the Redis store in Lua), so that all readers converge.
 */
export function supersedes(next: StatusMessage, current: StatusMessage): boolean {
  const generationNext = next.generation ?? 0;
  const generationCurrent = current.generation ?? 0;
  if (generationNext !== generationCurrent) return generationNext > generationCurrent;
  const rankNext = statusRank(next.status);
  const rankCurrent = statusRank(current.status);
  if (rankNext !== rankCurrent) return rankNext > rankCurrent;
  if (isTerminal(current.status)) return false;
  return next.updatedAt > current.updatedAt;
}
