import { z } from 'zod';
import { attempt, callback, epochMs, terminalStatuses } from './common.ts';
import { statusMessage } from './status.ts';

/**
 * What delivery consumes on `sluice.completions.v1`, keyed by batch id. Every request gets a `request`
 * completion when it is terminal (delivered to the tenant's result topic, and to the callback of a single
 * request); a batch submitted through /v1/batches also gets one `batch` completion (its callback's webhook).
 */
export const requestCompletion = z.object({
  kind: z.literal('request'),
  tenant: z.string(),
  batchId: z.string(),
  id: z.string(),
  callback: callback.optional(),
  status: statusMessage,
});
export type RequestCompletion = z.infer<typeof requestCompletion>;

export const batchCompletion = z.object({
  kind: z.literal('batch'),
  tenant: z.string(),
  batchId: z.string(),
  route: z.string(),
  callback: callback.optional(),
  acceptedAt: epochMs,
  completedAt: epochMs,
  counts: z.record(z.enum(terminalStatuses), z.number().int().nonnegative()),
  items: z.array(
    z.object({ id: z.string(), status: z.enum(terminalStatuses), httpStatus: z.number().int().optional() }),
  ),
});
export type BatchCompletion = z.infer<typeof batchCompletion>;

export const completionMessage = z.discriminatedUnion('kind', [requestCompletion, batchCompletion]);
export type CompletionMessage = z.infer<typeof completionMessage>;

/** A webhook waiting for another try, on `sluice.deliveries.retry.v1` with a not-before header. */
export const webhookRetryMessage = z.object({
  completion: completionMessage,
  /** Tries made so far. */
  attempts: z.array(attempt),
});
export type WebhookRetryMessage = z.infer<typeof webhookRetryMessage>;
