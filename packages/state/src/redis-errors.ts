import { ReplyError } from 'ioredis';

export const stateErrorCodes = {
  /** The server could not be reached, did not answer within the command timeout, or the store is closed. */
  unavailable: 'STATE_UNAVAILABLE',
} as const;
export type StateErrorCode = (typeof stateErrorCodes)[keyof typeof stateErrorCodes];

/**
 * The shared store cannot answer right now; retrying later may succeed. The ingress answers 503 with Retry-After
 * rather than guessing (an idempotency claim or a rate limit that was not decided must not be assumed).
 */
export class StateUnavailableError extends Error {
  override readonly name = 'StateUnavailableError';
  readonly code = stateErrorCodes.unavailable;
  readonly retryable = true;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

// Error replies that mean "not now" rather than "wrong command": the first word of a Redis error reply is its
// code by the protocol's convention (LOADING while a restarted server reads its data, CLUSTERDOWN while slots
// are uncovered, and so on).
const transientReplyCodes = new Set([
  'LOADING',
  'BUSY',
  'CLUSTERDOWN',
  'TRYAGAIN',
  'MASTERDOWN',
  'READONLY',
  'NOREPLICAS',
  'MOVED',
  'ASK',
]);

/**
 * Whether a failed command means that the server is unreachable or not serving (true) or that the command itself
 * is wrong (false: a bug, rethrown as it is). Anything that is not an error reply from the server is a connection
 * problem: refused, reset, timed out, or rejected by the client while it is offline.
 */
export function isUnavailability(error: unknown): boolean {
  if (!(error instanceof ReplyError)) return true;
  const code = replyCode(error);
  return code !== undefined && transientReplyCodes.has(code);
}

/** The code of a Redis error reply (its first word, such as NOSCRIPT or LOADING), or undefined for other errors. */
export function replyCode(error: unknown): string | undefined {
  if (!(error instanceof ReplyError)) return undefined;
  return /^[A-Z]+/.exec((error as Error).message)?.[0];
}
