import { z } from 'zod';
import { attempt, callback, epochMs, failure, httpResult, idempotency, terminalStatuses } from './common.ts';

/**
 * What the aggregator consumes on `sluice.results.v1`, keyed by batch id so that everything of one batch reaches
 * one aggregator partition. Three kinds: the ingress announces a batch (`accepted`), batch-workers report the
 * first try (`started`) and the one outcome of each request (`finished`).
 */
export const acceptedMessage = z.object({
  kind: z.literal('accepted'),
  batchId: z.string(),
  tenant: z.string(),
  route: z.string(),
  /** Submitted as a single request (POST /v1/requests or the transparent form), not through /v1/batches. */
  single: z.boolean(),
  ids: z.array(z.string()).min(1),
  acceptedAt: epochMs,
  deadlineAt: epochMs,
  callback: callback.optional(),
  /** The redrive generation of the batch's requests (absent: 0); their statuses carry it. */
  generation: z.number().int().positive().optional(),
});
export type AcceptedMessage = z.infer<typeof acceptedMessage>;

const requestRef = {
  id: z.string(),
  batchId: z.string(),
  tenant: z.string(),
  route: z.string(),
  acceptedAt: epochMs,
  idempotency: idempotency.optional(),
};

export const startedMessage = z.object({
  kind: z.literal('started'),
  ...requestRef,
  startedAt: epochMs,
});
export type StartedMessage = z.infer<typeof startedMessage>;

export const finishedMessage = z.object({
  kind: z.literal('finished'),
  ...requestRef,
  status: z.enum(terminalStatuses),
  attempts: z.array(attempt),
  result: httpResult.optional(),
  error: failure.optional(),
  startedAt: epochMs.optional(),
  finishedAt: epochMs,
});
export type FinishedMessage = z.infer<typeof finishedMessage>;

export const progressMessage = z.discriminatedUnion('kind', [
  acceptedMessage,
  startedMessage,
  finishedMessage,
]);
export type ProgressMessage = z.infer<typeof progressMessage>;
