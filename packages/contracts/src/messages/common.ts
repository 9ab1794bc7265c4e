import { z } from 'zod';

export const priorities = ['high', 'normal', 'low'] as const;
export type Priority = (typeof priorities)[number];

export const requestStatuses = ['queued', 'processing', 'succeeded', 'failed', 'expired', 'dead'] as const;
export type RequestStatus = (typeof requestStatuses)[number];

export const terminalStatuses = ['succeeded', 'failed', 'expired', 'dead'] as const;
export type TerminalStatus = (typeof terminalStatuses)[number];

export function isTerminal(status: RequestStatus): status is TerminalStatus {
  return (terminalStatuses as readonly string[]).includes(status);
}

/**
 * How far a status is along its life: a status never moves back, so whoever materialises statuses keeps the one
 * with the higher rank when two arrive out of order (two writers, a replay after a crash).
 */
export function statusRank(status: RequestStatus): number {
  switch (status) {
    case 'queued':
      return 0;
    case 'processing':
      return 1;
    default:
      return 2;
  }
}

export const epochMs = z.number().int().nonnegative();

export const httpHeaders = z.record(z.string(), z.string());
export type HttpHeaders = z.infer<typeof httpHeaders>;

export const httpQuery = z.record(z.string(), z.union([z.string(), z.array(z.string())]));
export type HttpQuery = z.infer<typeof httpQuery>;

/** Bytes carried inside a JSON record: text as it is, anything else base64. */
export const payload = z.object({
  encoding: z.enum(['utf8', 'base64']),
  data: z.string(),
});
export type Payload = z.infer<typeof payload>;

/** An upstream's answer, as status lookups, webhooks and result topics show it. */
export const httpResult = z.object({
  status: z.number().int().min(100).max(599),
  headers: httpHeaders,
  body: z.string().optional(),
  bodyBase64: z.string().optional(),
});
export type HttpResult = z.infer<typeof httpResult>;

export const failure = z.object({
  /** A code from a closed list of the service that failed (e.g. UPSTREAM_TIMEOUT). */
  code: z.string(),
  message: z.string(),
});
export type Failure = z.infer<typeof failure>;

/** One try of a request toward its upstream, kept for the status, the dead letter and the trace. */
export const attempt = z.object({
  number: z.number().int().positive(),
  startedAt: epochMs,
  durationMs: z.number().nonnegative(),
  /** The target that was called (origin only, never credentials). */
  target: z.string().optional(),
  status: z.number().int().optional(),
  error: failure.optional(),
});
export type Attempt = z.infer<typeof attempt>;

export const idempotency = z.object({
  key: z.string(),
  /** Hash of the request's content: the same key with different content is a conflict. */
  fingerprint: z.string(),
});
export type Idempotency = z.infer<typeof idempotency>;

export const callback = z.object({ url: z.string() });
export type Callback = z.infer<typeof callback>;
