import { z } from 'zod';
import {
  attempt,
  callback,
  epochMs,
  httpHeaders,
  httpQuery,
  idempotency,
  payload,
  priorities,
} from './common.ts';

/**
 * An accepted request, on `sluice.requests.v1` (and on the retry topic with a not-before header). Keyed by the
 * ordering key when the client gave one, so that records with one key share a partition, else by id.
 */
export const redrive = z.object({
  generation: z.number().int().positive(),
  /** The batch the request was first submitted in. */
  originalBatchId: z.string(),
  redrivenAt: epochMs,
  /** The admin key's id that asked for it. */
  by: z.string(),
  /** The tries of the earlier generations, oldest first; `attempts` holds this generation's only. */
  previousAttempts: z.array(attempt),
});
export type Redrive = z.infer<typeof redrive>;

export const requestMessage = z.object({
  id: z.string(),
  batchId: z.string(),
  /** How many requests were submitted together; 1 for a single request. */
  batchSize: z.number().int().positive(),
  tenant: z.string(),
  route: z.string(),
  method: z.string(),
  /** Path below the route's upstream base, starting with "/". */
  path: z.string(),
  query: httpQuery,
  headers: httpHeaders,
  body: payload.optional(),
  priority: z.enum(priorities),
  key: z.string().optional(),
  idempotency: idempotency.optional(),
  acceptedAt: epochMs,
  /** After this instant the request is not sent; it ends as expired. */
  deadlineAt: epochMs,
  callback: callback.optional(),
  /** Tries made so far; empty when the ingress produces the record, the earlier tries' when it is redriven. */
  attempts: z.array(attempt),
  /** Set when an operator sent a dead request again: same id, a new batch of its own, the next generation. */
  redrive: redrive.optional(),
});
export type RequestMessage = z.infer<typeof requestMessage>;

/** The record key of a request: its ordering key (scoped by tenant and route) or its id. */
export function requestRecordKey(request: Pick<RequestMessage, 'tenant' | 'route' | 'key' | 'id'>): string {
  return request.key === undefined ? request.id : `${request.tenant}/${request.route}/${request.key}`;
}
