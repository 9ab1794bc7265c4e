export { type UpstreamCall, UpstreamClient, type UpstreamClientOptions } from './client.ts';
export { forwardableHeaders, hopByHopHeaders, internalHeaderPrefix } from './headers.ts';
export {
  type BackoffPolicy,
  backoffDelayMs,
  classify,
  decideRetry,
  type RetryDecision,
  retryAfterMs,
  type UpstreamErrorCode,
  type UpstreamOutcome,
  upstreamErrorCodes,
  type Verdict,
} from './outcome.ts';
export { type ResultDocument, resultOf } from './result.ts';
export { UpstreamPathError, upstreamUrl } from './url.ts';
