import type { GatewayConfig } from '@sluice/gateway-config';
import { batchSubmission, requestSubmission } from './api-schemas.ts';
import { type Enqueuer, submittedId } from './enqueue.ts';
import type { Lookups } from './lookups.ts';
import { fingerprint, payloadOf, planBatch, type SubmittedRequest } from './plan.ts';
import { HttpProblem, validationProblem } from './problems.ts';

export interface SubmitContext {
  tenant: string;
  config: GatewayConfig;
  headerIdempotencyKey: string | undefined;
  enqueuer: Enqueuer;
  /** Backpressure and the tenant's rate limit, for `cost` requests; throws the refusal. */
  admit(cost: number): Promise<void>;
  now: number;
}

/** POST /v1/requests: validates, plans and enqueues one request; the id of the new or the original request. */
export async function submitRequest(
  body: unknown,
  ctx: SubmitContext,
): Promise<{ id: string; replayed: boolean }> {
  const parsed = requestSubmission.safeParse(body);
  if (!parsed.success) throw validationProblem(parsed.error);
  const { body: jsonValue, bodyBase64, idempotencyKey, callback, ...fields } = parsed.data;
  const submitted: SubmittedRequest = { ...fields, payload: payloadOf(jsonValue, bodyBase64) };
  const key = idempotencyKeyOf(idempotencyKey, ctx.headerIdempotencyKey);
  const idempotency =
    key === undefined
      ? undefined
      : { key, fingerprint: fingerprint('request', { ...parsed.data, idempotencyKey: undefined }) };
  const batch = planBatch({
    config: ctx.config,
    tenant: ctx.tenant,
    items: [{ submitted, jsonBody: jsonValue !== undefined && typeof jsonValue !== 'string' }],
    single: true,
    callback,
    idempotency,
    now: ctx.now,
  });
  await ctx.admit(1);
  return submittedId(await ctx.enqueuer.enqueue(batch));
}

/** POST /v1/batches: all requests are checked before any is enqueued; one bad item refuses the whole batch. */
export async function submitBatch(
  body: unknown,
  ctx: SubmitContext & { lookups: Lookups },
): Promise<{ batchId: string; ids: string[]; replayed: boolean }> {
  const max = ctx.config.limits.maxBatchRequests;
  const count = (body as { requests?: unknown } | null)?.requests;
  if (Array.isArray(count) && count.length > max) {
    throw new HttpProblem('too-large', {
      detail: `a batch holds at most ${max} requests; this one has ${count.length}`,
    });
  }
  const parsed = batchSubmission.safeParse(body);
  if (!parsed.success) throw validationProblem(parsed.error);
  const key = idempotencyKeyOf(parsed.data.idempotencyKey, ctx.headerIdempotencyKey);
  const idempotency =
    key === undefined
      ? undefined
      : { key, fingerprint: fingerprint('batch', { ...parsed.data, idempotencyKey: undefined }) };
  const batch = planBatch({
    config: ctx.config,
    tenant: ctx.tenant,
    items: parsed.data.requests.map(({ body: jsonValue, bodyBase64, ...fields }) => ({
      submitted: { ...fields, payload: payloadOf(jsonValue, bodyBase64) },
      jsonBody: jsonValue !== undefined && typeof jsonValue !== 'string',
    })),
    single: false,
    callback: parsed.data.callback,
    idempotency,
    now: ctx.now,
  });
  await ctx.admit(batch.requests.length);
  const outcome = await ctx.enqueuer.enqueue(batch);
  if (outcome.kind === 'accepted') {
    return { batchId: batch.batchId, ids: batch.requests.map((r) => r.message.id), replayed: false };
  }
  const statuses = (await ctx.lookups.batch(ctx.tenant, outcome.id)) ?? [];
  return { batchId: outcome.id, ids: statuses.map((s) => s.id).sort(), replayed: true };
}

/** The idempotency key of a submission (the body's field or the header, which must agree), checked. */
export function idempotencyKeyOf(field: string | undefined, header: string | undefined): string | undefined {
  if (field !== undefined && header !== undefined && field !== header) {
    throw new HttpProblem('validation', {
      detail: 'the Idempotency-Key header and the idempotencyKey field differ',
      errors: [{ path: 'idempotencyKey', message: 'differs from the Idempotency-Key header' }],
    });
  }
  const key = field ?? header;
  if (key !== undefined && (key.length === 0 || key.length > 256)) {
    throw new HttpProblem('validation', {
      detail: 'an idempotency key has 1 to 256 characters',
      errors: [{ path: 'idempotencyKey', message: 'length 1 to 256' }],
    });
  }
  return key;
}
