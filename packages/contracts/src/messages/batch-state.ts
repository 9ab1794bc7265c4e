import { z } from 'zod';
import { callback, epochMs, terminalStatuses } from './common.ts';
import { finishedMessage, startedMessage } from './progress.ts';

export const batchItem = z.object({
  status: z.enum(terminalStatuses),
  httpStatus: z.number().int().optional(),
  finishedAt: epochMs,
  /** The W3C trace context of the request's result, so that the batch's completion links to its trace. */
  traceparent: z.string().optional(),
});
export type BatchItem = z.infer<typeof batchItem>;

/**
 * The aggregator's state of one batch, on the compacted `sluice.batch-state.v1` keyed by batch id (co-partitioned
 * with the results topic). `awaiting-accept` holds results that overtook their batch's announcement; `closed`
 * stays for a grace period after completion so that replayed or duplicate results are recognised and ignored.
 */
export const batchState = z.object({
  batchId: z.string(),
  tenant: z.string(),
  phase: z.enum(['awaiting-accept', 'open', 'closed']),
  route: z.string().optional(),
  single: z.boolean().optional(),
  ids: z.array(z.string()),
  acceptedAt: epochMs.optional(),
  deadlineAt: epochMs.optional(),
  callback: callback.optional(),
  /** Terminal items by request id. */
  items: z.record(z.string(), batchItem),
  /** Results that arrived before the batch was announced, applied when it is. */
  early: z.array(z.discriminatedUnion('kind', [startedMessage, finishedMessage])),
  /** Highest offset of the results partition applied to this batch; a replayed record at or below it is skipped. */
  appliedOffset: z.string(),
  createdAt: epochMs,
  closedAt: epochMs.optional(),
  /** The redrive generation of the batch's requests (absent: 0), stamped on every status it writes. */
  generation: z.number().int().positive().optional(),
  /** The batch's W3C trace context from its announcement, carried onto what the deadline sweep writes. */
  traceparent: z.string().optional(),
  /**
   * Bumped on every write. The owner applies its own writes at once and a reader of the changelog applies a
   * record only when it is newer, so a changelog record read late never takes the state back.
   */
  revision: z.number().int().nonnegative(),
});
export type BatchState = z.infer<typeof batchState>;
