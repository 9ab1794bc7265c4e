import type { Payload } from '@sluice/contracts';
import { type HttpMethod, httpMethods } from '@sluice/gateway-config';
import type { Request } from 'express';
import { submittedId } from './enqueue.ts';
import { fingerprint, planBatch, type SubmittedRequest } from './plan.ts';
import { HttpProblem } from './problems.ts';
import { idempotencyKeyOf, type SubmitContext } from './submit.ts';

/**
 * Headers that steer Sluice in the transparent form. Like every `Sluice-*` header they never reach the upstream;
 * neither do `Authorization` (the Sluice key), `Prefer` and `Idempotency-Key` (Sluice sends its own).
 */
export const controlHeaders = {
  priority: 'sluice-priority',
  key: 'sluice-key',
  deadlineMs: 'sluice-deadline-ms',
  callback: 'sluice-callback',
} as const;

const consumedHeaders = new Set(['authorization', 'prefer', 'idempotency-key']);

interface TransparentContext extends Omit<SubmitContext, 'headerIdempotencyKey'> {
  route: string;
}

/** Any method on /r/{route}/{path}: the HTTP request as it came, enqueued for the route's upstream. */
export async function transparentRequest(
  req: Request,
  ctx: TransparentContext,
): Promise<{ id: string; replayed: boolean }> {
  const method = req.method.toUpperCase();
  if (!(httpMethods as readonly string[]).includes(method)) {
    throw new HttpProblem('method-not-allowed', { detail: `${method} cannot be queued` });
  }
  const url = new URL(req.originalUrl, 'http://ingress.invalid');
  // The path after the route's segment as the client wrote it (the route segment may be percent-encoded).
  const afterRoute = /^\/r\/[^/]*(\/.*)?$/.exec(url.pathname)?.[1];
  const path = afterRoute ?? '/';
  const query: Record<string, string | string[]> = {};
  for (const name of new Set(url.searchParams.keys())) {
    const values = url.searchParams.getAll(name);
    query[name] = values.length === 1 ? (values[0] as string) : values;
  }
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || consumedHeaders.has(name)) continue;
    headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
  const priority = req.get(controlHeaders.priority);
  if (priority !== undefined && !['high', 'normal', 'low'].includes(priority)) {
    throw new HttpProblem('validation', { detail: `${controlHeaders.priority} must be high, normal or low` });
  }
  const deadline = req.get(controlHeaders.deadlineMs);
  if (deadline !== undefined && !/^\d{4,12}$/.test(deadline)) {
    throw new HttpProblem('validation', {
      detail: `${controlHeaders.deadlineMs} must be milliseconds, at least 1000`,
    });
  }
  const callbackUrl = req.get(controlHeaders.callback);
  if (callbackUrl !== undefined && !/^https?:\/\/[^\s]+$/i.test(callbackUrl)) {
    throw new HttpProblem('validation', {
      detail: `${controlHeaders.callback} must be an http or https URL`,
    });
  }
  const key = req.get(controlHeaders.key);
  if (key !== undefined && (key.length === 0 || key.length > 256)) {
    throw new HttpProblem('validation', { detail: `${controlHeaders.key} has 1 to 256 characters` });
  }
  const submitted: SubmittedRequest = {
    route: ctx.route,
    method: method as HttpMethod,
    path,
    query,
    headers,
    ...(body.length > 0 ? { payload: payloadOfBytes(body) } : {}),
    ...(priority !== undefined ? { priority: priority as 'high' | 'normal' | 'low' } : {}),
    ...(key !== undefined ? { key } : {}),
    ...(deadline !== undefined ? { deadlineMs: Number(deadline) } : {}),
  };
  const idempotencyKey = idempotencyKeyOf(undefined, req.get('idempotency-key'));
  const idempotency =
    idempotencyKey === undefined
      ? undefined
      : { key: idempotencyKey, fingerprint: fingerprint('transparent', { ...submitted, callbackUrl }) };
  const batch = planBatch({
    config: ctx.config,
    tenant: ctx.tenant,
    items: [{ submitted, jsonBody: false }],
    single: true,
    callback: callbackUrl === undefined ? undefined : { url: callbackUrl },
    idempotency,
    now: ctx.now,
  });
  await ctx.admit(1);
  return submittedId(await ctx.enqueuer.enqueue(batch));
}

/** Bytes as text when they are valid UTF-8 (smaller records, readable in tools), else base64. */
function payloadOfBytes(body: Buffer): Payload {
  try {
    return { encoding: 'utf8', data: new TextDecoder('utf-8', { fatal: true }).decode(body) };
  } catch {
    return { encoding: 'base64', data: body.toString('base64') };
  }
}
