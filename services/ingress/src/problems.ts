import { StateUnavailableError } from '@sluice/state';
import type { ErrorRequestHandler, Response } from 'express';
import type { z } from 'zod';

/** The closed list of problem types the ingress answers with (RFC 9457 `type` is `urn:sluice:problem:<slug>`). */
export const problemTypes = {
  'invalid-json': { status: 400, title: 'Malformed JSON' },
  validation: { status: 400, title: 'Invalid request' },
  'invalid-prefer': { status: 400, title: 'Invalid Prefer header' },
  unauthenticated: { status: 401, title: 'Missing or invalid API key' },
  forbidden: { status: 403, title: 'Not allowed' },
  'not-found': { status: 404, title: 'Not Found' },
  'unknown-route': { status: 404, title: 'Unknown route' },
  'method-not-allowed': { status: 405, title: 'Method not allowed on this route' },
  'too-large': { status: 413, title: 'Content too large' },
  'not-redrivable': { status: 409, title: 'The request cannot be redriven now' },
  'idempotency-conflict': { status: 422, title: 'Idempotency key reused with a different request' },
  'callback-not-configured': { status: 422, title: 'Callbacks need a webhook secret' },
  'rate-limited': { status: 429, title: "The tenant's rate limit is reached" },
  'load-shed': { status: 429, title: 'The queue is long and this tenant sends most of it; slow down' },
  'too-many-streams': { status: 429, title: 'Too many open event streams' },
  'headers-too-large': { status: 431, title: 'Request header fields too large' },
  'enqueue-failed': { status: 503, title: 'Could not enqueue the request; nothing was accepted' },
  'not-ready': { status: 503, title: 'Not ready' },
  overloaded: { status: 503, title: 'The queue is full; nothing was accepted' },
  'at-capacity': { status: 503, title: 'This replica is at its capacity now; nothing was accepted' },
  'state-unavailable': { status: 503, title: 'The state store cannot answer now' },
  'upstream-failed': { status: 502, title: 'The upstream did not answer successfully' },
  'bad-gateway': { status: 502, title: 'The upstream could not be reached' },
  'gateway-timeout': { status: 504, title: 'The upstream did not answer in time' },
  'upstream-unavailable': { status: 503, title: 'The upstream has no healthy target or no room now' },
  'upstream-rate-limited': { status: 429, title: "The upstream's rate limit is reached" },
  'deadline-passed': { status: 504, title: 'The request expired before it was sent' },
  internal: { status: 500, title: 'Internal error' },
} as const;
export type ProblemSlug = keyof typeof problemTypes;

export interface ProblemOptions {
  detail?: string;
  errors?: Array<{ path: string; message: string }>;
  headers?: Record<string, string>;
  extensions?: Record<string, unknown>;
}

/** A failure the client should see as a problem document; thrown by handlers, answered by the error handler. */
export class HttpProblem extends Error {
  readonly slug: ProblemSlug;
  readonly options: ProblemOptions;

  constructor(slug: ProblemSlug, options: ProblemOptions = {}, cause?: unknown) {
    super(options.detail ?? problemTypes[slug].title, { cause });
    this.name = 'HttpProblem';
    this.slug = slug;
    this.options = options;
  }

  get status(): number {
    return problemTypes[this.slug].status;
  }
}

export function problemBody(slug: ProblemSlug, instance: string, options: ProblemOptions = {}) {
  const { status, title } = problemTypes[slug];
  return {
    type: `urn:sluice:problem:${slug}`,
    title,
    status,
    ...(options.detail !== undefined ? { detail: options.detail } : {}),
    instance,
    ...(options.errors !== undefined ? { errors: options.errors } : {}),
    ...options.extensions,
  };
}

export function sendProblem(res: Response, slug: ProblemSlug, options: ProblemOptions = {}): void {
  const body = problemBody(slug, res.req.originalUrl.split('?')[0] ?? '/', options);
  res
    .status(body.status)
    .set(options.headers ?? {})
    .type('application/problem+json')
    .json(body);
}

/** A zod failure as a validation problem naming each field. */
export function validationProblem(error: z.ZodError, prefix = ''): HttpProblem {
  const errors = error.issues.slice(0, 50).map((issue) => ({
    path: [prefix, ...issue.path.map(String)].filter(Boolean).join('.') || '(body)',
    message: issue.message,
  }));
  return new HttpProblem('validation', {
    detail: errors.map((e) => `${e.path}: ${e.message}`).join('; '),
    errors,
  });
}

/** Turns thrown problems, body-parser failures and anything unexpected into problem documents. */
export function problemHandler(onUnexpected: (error: unknown) => void): ErrorRequestHandler {
  return (error, _req, res, _next) => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (error instanceof HttpProblem) return sendProblem(res, error.slug, error.options);
    if (error instanceof StateUnavailableError) {
      return sendProblem(res, 'state-unavailable', {
        detail:
          'statuses and idempotency keys cannot be read now; requests without an Idempotency-Key are still accepted',
        headers: { 'retry-after': '5' },
      });
    }
    const type = (error as { type?: string }).type;
    if (type === 'entity.parse.failed') {
      return sendProblem(res, 'invalid-json', { detail: (error as Error).message });
    }
    if (type === 'entity.too.large') {
      const limit = (error as { limit?: number }).limit;
      return sendProblem(res, 'too-large', { detail: `the body exceeds ${limit} bytes` });
    }
    if (type === 'encoding.unsupported' || type === 'charset.unsupported') {
      return sendProblem(res, 'validation', { detail: (error as Error).message });
    }
    // The body parsers and the router mark the client's own faults with a 4xx status: a compressed body that does
    // not inflate, a path parameter that does not percent-decode. Those are bad requests, not internal errors.
    const status = (error as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      return sendProblem(res, 'validation', { detail: (error as Error).message });
    }
    onUnexpected(error);
    sendProblem(res, 'internal');
  };
}
