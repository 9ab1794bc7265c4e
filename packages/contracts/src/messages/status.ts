import { z } from 'zod';
import { epochMs, failure, httpResult, idempotency, requestStatuses } from './common.ts';

/**
 * The latest status of a request, on the compacted `sluice.status.v1` keyed by request id. The ingress writes
 * `queued`; the aggregator writes every later status. Readers keep the record with the higher rank
 * ({@link statusRank}) so that a late `queued` never hides a terminal status.
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
  updatedAt: epochMs,
});
export type StatusMessage = z.infer<typeof statusMessage>;
