import { createHash } from 'node:crypto';
import {
  type AcceptedMessage,
  type Callback,
  derivedId,
  newId,
  type Payload,
  type RequestMessage,
  type StatusMessage,
} from '@sluice/contracts';
import { type GatewayConfig, type RouteConfig, routeNamed } from '@sluice/gateway-config';
import { checkUpstreamPath, forwardableHeaders, UpstreamPathError } from '@sluice/upstream';
import type { BatchItemSubmission } from './api-schemas.ts';
import { HttpProblem } from './problems.ts';

/** One request as the ingress will enqueue it: its record and its first status. */
export interface PlannedRequest {
  message: RequestMessage;
  status: StatusMessage;
}

export interface PlannedBatch {
  batchId: string;
  single: boolean;
  route: string;
  requests: PlannedRequest[];
  accepted: AcceptedMessage;
}

/** A request in the shape both API forms reduce to: the JSON form's fields, or the transparent form's. */
export interface SubmittedRequest extends Omit<BatchItemSubmission, 'body' | 'bodyBase64'> {
  payload?: Payload;
}

/** Throws a validation problem naming `path` when a client's path could leave its route's base path. */
export function checkPath(path: string): void {
  try {
    checkUpstreamPath(path);
  } catch (error) {
    if (!(error instanceof UpstreamPathError)) throw error;
    throw new HttpProblem('validation', {
      detail: error.message,
      errors: [{ path: 'path', message: error.message }],
    });
  }
}

/** The route a tenant names, or the problem that explains why it cannot use it. */
export function routeFor(config: GatewayConfig, tenant: string, route: string): RouteConfig {
  const entry = routeNamed(config, route);
  if (entry === undefined) throw new HttpProblem('unknown-route', { detail: `no route named "${route}"` });
  if (!config.tenants[tenant]?.routes.includes(route)) {
    throw new HttpProblem('forbidden', { detail: `this tenant may not use route "${route}"` });
  }
  return entry;
}

/** A JSON-form body as bytes: a string is text, any other JSON value is serialised; base64 is decoded. */
export function payloadOf(body: unknown, bodyBase64: string | undefined): Payload | undefined {
  if (bodyBase64 !== undefined) return { encoding: 'base64', data: bodyBase64 };
  if (body === undefined) return undefined;
  return { encoding: 'utf8', data: typeof body === 'string' ? body : JSON.stringify(body) };
}

export function payloadBytes(payload: Payload | undefined): number {
  if (payload === undefined) return 0;
  return payload.encoding === 'utf8'
    ? Buffer.byteLength(payload.data)
    : Buffer.from(payload.data, 'base64').length;
}

/**
 * Checks one request against its route and the limits, and builds its record. Pure: ids and time come in, so
 * that every rule is unit-tested. Throws the HttpProblem a client should see.
 */
export function planRequest(input: {
  config: GatewayConfig;
  tenant: string;
  submitted: SubmittedRequest;
  jsonBody: boolean;
  id: string;
  batchId: string;
  batchSize: number;
  now: number;
  idempotency?: { key: string; fingerprint: string } | undefined;
  callback?: Callback | undefined;
  single: boolean;
}): PlannedRequest {
  const { config, tenant, submitted, now } = input;
  const route = routeFor(config, tenant, submitted.route);
  if (!route.methods.includes(submitted.method)) {
    throw new HttpProblem('method-not-allowed', {
      detail: `route "${submitted.route}" allows ${route.methods.join(', ')}`,
      headers: { allow: route.methods.join(', ') },
    });
  }
  const headers = forwardableHeaders(submitted.headers ?? {});
  const headerCount = Object.keys(headers).length;
  const headerBytes = Object.entries(headers).reduce((sum, [n, v]) => sum + n.length + v.length + 4, 0);
  if (headerCount > config.limits.maxHeaderCount || headerBytes > config.limits.maxHeaderBytes) {
    throw new HttpProblem('headers-too-large', {
      detail: `at most ${config.limits.maxHeaderCount} headers and ${config.limits.maxHeaderBytes} bytes of them`,
    });
  }
  const bytes = payloadBytes(submitted.payload);
  const maxBodyBytes = route.maxBodyBytes ?? config.limits.maxBodyBytes;
  if (bytes > maxBodyBytes) {
    throw new HttpProblem('too-large', { detail: `the body exceeds ${maxBodyBytes} bytes` });
  }
  if (input.jsonBody && submitted.payload?.encoding === 'utf8' && headers['content-type'] === undefined) {
    headers['content-type'] = 'application/json';
  }
  checkPath(submitted.path);
  const deadlineMs = submitted.deadlineMs ?? route.deadline.defaultMs;
  if (deadlineMs > route.deadline.maxMs) {
    throw new HttpProblem('validation', {
      detail: `deadlineMs must not exceed ${route.deadline.maxMs} on route "${submitted.route}"`,
      errors: [{ path: 'deadlineMs', message: `at most ${route.deadline.maxMs}` }],
    });
  }
  if (input.callback !== undefined && config.tenants[tenant]?.webhookSecret === undefined) {
    throw new HttpProblem('callback-not-configured', {
      detail: 'this tenant has no webhook secret configured, so callbacks cannot be signed',
    });
  }
  const message: RequestMessage = {
    id: input.id,
    batchId: input.batchId,
    batchSize: input.batchSize,
    tenant,
    route: submitted.route,
    method: submitted.method,
    path: submitted.path,
    query: submitted.query ?? {},
    headers,
    ...(submitted.payload !== undefined ? { body: submitted.payload } : {}),
    priority: submitted.priority ?? 'normal',
    ...(submitted.key !== undefined ? { key: submitted.key } : {}),
    ...(input.idempotency !== undefined ? { idempotency: input.idempotency } : {}),
    acceptedAt: now,
    deadlineAt: now + deadlineMs,
    ...(input.callback !== undefined && input.single ? { callback: input.callback } : {}),
    attempts: [],
  };
  const status: StatusMessage = {
    id: message.id,
    batchId: message.batchId,
    single: input.single,
    tenant,
    route: message.route,
    status: 'queued',
    attempts: 0,
    timings: { acceptedAt: now },
    ...(input.idempotency !== undefined ? { idempotency: input.idempotency } : {}),
    updatedAt: now,
  };
  return { message, status };
}

/** Plans a batch (or a single request as a batch of one) and its announcement to the aggregator. */
export function planBatch(input: {
  config: GatewayConfig;
  tenant: string;
  items: Array<{ submitted: SubmittedRequest; jsonBody: boolean }>;
  single: boolean;
  callback?: Callback | undefined;
  idempotency?: { key: string; fingerprint: string } | undefined;
  now: number;
  batchId?: string;
  newRequestId?: () => string;
}): PlannedBatch {
  const batchId = input.batchId ?? newId();
  const nextId = input.newRequestId ?? newId;
  const requests = input.items.map(({ submitted, jsonBody }, index) => {
    try {
      return planRequest({
        config: input.config,
        tenant: input.tenant,
        submitted,
        jsonBody,
        id: input.single ? batchId : nextId(),
        batchId,
        batchSize: input.items.length,
        now: input.now,
        idempotency: input.idempotency,
        callback: input.callback,
        single: input.single,
      });
    } catch (error) {
      if (input.single || !(error instanceof HttpProblem)) throw error;
      // In a batch, say which item is at fault.
      throw new HttpProblem(error.slug, {
        ...error.options,
        detail: `requests.${index}: ${error.message}`,
        errors: (error.options.errors ?? [{ path: '', message: error.message }]).map((e) => ({
          path: ['requests', index, e.path].filter((p) => p !== '').join('.'),
          message: e.message,
        })),
      });
    }
  });
  const first = requests[0]?.message;
  if (first === undefined) throw new HttpProblem('validation', { detail: 'no requests' });
  return {
    batchId,
    single: input.single,
    route: first.route,
    requests,
    accepted: {
      kind: 'accepted',
      batchId,
      tenant: input.tenant,
      route: first.route,
      single: input.single,
      ids: requests.map((r) => r.message.id),
      acceptedAt: input.now,
      deadlineAt: Math.max(...requests.map((r) => r.message.deadlineAt)),
      ...(input.callback !== undefined ? { callback: input.callback } : {}),
    },
  };
}

/**
 * The batch with ids derived from its tenant, idempotency key and content instead of random ones. The ingress
 * enqueues this when the shared store cannot arbitrate the key (Redis unreachable): a client's retries, on any
 * replica, then carry the same ids, and the pipeline's de-duplication by request id (the aggregator keeps one
 * result per request and one announcement per batch, the upstream gets the same `Idempotency-Key`) stands in for
 * the store's claim.
 */
export function withDerivedIds(
  batch: PlannedBatch,
  idempotency: { key: string; fingerprint: string },
): PlannedBatch {
  const batchId = derivedId(['idempotency', batch.accepted.tenant, idempotency.key, idempotency.fingerprint]);
  const ids = batch.requests.map((_, index) =>
    batch.single ? batchId : derivedId([batchId, String(index)]),
  );
  const requests = batch.requests.map(({ message, status }, index) => {
    const id = ids[index] ?? batchId;
    return { message: { ...message, id, batchId }, status: { ...status, id, batchId } };
  });
  return { ...batch, batchId, requests, accepted: { ...batch.accepted, batchId, ids } };
}

/** The content hash behind idempotency: same key and same fingerprint is the same request. */
export function fingerprint(endpoint: string, content: unknown): string {
  return createHash('sha256').update(endpoint).update('\n').update(canonicalJson(content)).digest('hex');
}

/** JSON with object keys sorted, so that field order does not change a fingerprint. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
