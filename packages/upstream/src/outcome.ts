/** Failure codes of an upstream try; decisions switch on these, never on message text. */
export const upstreamErrorCodes = {
  connect: 'UPSTREAM_CONNECT',
  timeout: 'UPSTREAM_TIMEOUT',
  reset: 'UPSTREAM_RESET',
  responseTooLarge: 'UPSTREAM_RESPONSE_TOO_LARGE',
  invalidRequest: 'UPSTREAM_INVALID_REQUEST',
  aborted: 'UPSTREAM_ABORTED',
  /** A coalesced call's answer was not an array of one result per item. */
  batchMismatch: 'UPSTREAM_BATCH_MISMATCH',
} as const;
export type UpstreamErrorCode = (typeof upstreamErrorCodes)[keyof typeof upstreamErrorCodes];

export type UpstreamOutcome =
  | { kind: 'response'; status: number; headers: Record<string, string>; body: Buffer; durationMs: number }
  | { kind: 'error'; code: UpstreamErrorCode; message: string; durationMs: number };

export type Verdict = 'success' | 'failure' | 'retry';

/** Statuses worth another try: the upstream is overloaded or a gateway in front of it failed. */
const retryableStatuses: ReadonlySet<number> = new Set([429, 502, 503, 504]);

/**
 * What a try's outcome means for the request: 2xx/3xx succeed; 429 and 502–504, connection failures, resets and
 * timeouts are tried again; any other answer is the upstream's final word (failed, with its response).
 */
export function classify(outcome: UpstreamOutcome): Verdict {
  if (outcome.kind === 'response') {
    if (outcome.status < 400) return 'success';
    return retryableStatuses.has(outcome.status) ? 'retry' : 'failure';
  }
  switch (outcome.code) {
    case 'UPSTREAM_CONNECT':
    case 'UPSTREAM_TIMEOUT':
    case 'UPSTREAM_RESET':
      return 'retry';
    case 'UPSTREAM_RESPONSE_TOO_LARGE':
    case 'UPSTREAM_INVALID_REQUEST':
    case 'UPSTREAM_ABORTED':
    case 'UPSTREAM_BATCH_MISMATCH':
      return 'failure';
    default:
      return assertNever(outcome.code);
  }
}

/**
 * Retry-After (RFC 9110 §10.2.3) in milliseconds from `now`: delay-seconds or an HTTP date; undefined when absent
 * or unreadable. Never negative.
 */
export function retryAfterMs(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  // An HTTP date names its day and month in letters; anything else (a negative number) is not one.
  if (!/^[A-Za-z]{3}, /.test(trimmed)) return undefined;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

export interface BackoffPolicy {
  baseDelayMs: number;
  maxDelayMs: number;
}

/**
 * Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff and Jitter"): a uniform
 * delay in [0, min(max, base·2^(n-1))] after the n-th failed try, so that clients that failed together do not
 * come back together.
 */
export function backoffDelayMs(
  failedTries: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, failedTries - 1));
  return Math.floor(random() * ceiling);
}

export type RetryDecision =
  | { retry: true; delayMs: number }
  | { retry: false; reason: 'not-retryable' | 'attempts-exhausted' | 'deadline' };

/**
 * Whether a request is tried again after its `failedTries`-th try, and when. A Retry-After from the upstream
 * is honoured as a lower bound on the delay; a retry that could not start before the deadline is not made.
 */
export function decideRetry(input: {
  verdict: Verdict;
  failedTries: number;
  maxAttempts: number;
  policy: BackoffPolicy;
  retryAfterMs: number | undefined;
  now: number;
  deadlineAt: number;
  random?: () => number;
}): RetryDecision {
  if (input.verdict !== 'retry') return { retry: false, reason: 'not-retryable' };
  if (input.failedTries >= input.maxAttempts) return { retry: false, reason: 'attempts-exhausted' };
  const delayMs = Math.max(
    backoffDelayMs(input.failedTries, input.policy, input.random),
    input.retryAfterMs ?? 0,
  );
  if (input.now + delayMs >= input.deadlineAt) return { retry: false, reason: 'deadline' };
  return { retry: true, delayMs };
}

function assertNever(value: never): never {
  throw new Error(`unhandled upstream error code: ${String(value)}`);
}
