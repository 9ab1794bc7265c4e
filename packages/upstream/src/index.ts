export { type UpstreamCall, UpstreamClient, type UpstreamClientOptions } from './client.ts';
export { tryDeadline } from './deadline.ts';
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
export { createBalancer } from './traffic/balancers.ts';
export { CircuitBreaker } from './traffic/circuit-breaker.ts';
export { type CoalescedItem, Coalescer, type CoalesceSettings, splitOutcome } from './traffic/coalescer.ts';
export {
  Dispatcher,
  type DispatcherOptions,
  type DispatchRequest,
  type RouteTraffic,
  reportOf,
} from './traffic/dispatcher.ts';
export { Gcra } from './traffic/gcra.ts';
export { HealthChecker, type HealthCheckSettings } from './traffic/health-checks.ts';
export { PartitionPauser, type PartitionRef } from './traffic/partition-pauser.ts';
export { type Balancer, type BalancerPolicy, type Lane, lanes, type Target } from './traffic/types.ts';
export {
  type Admission,
  type TryReport,
  type UpstreamSettings,
  UpstreamState,
  type WaitReason,
  waitReasons,
} from './traffic/upstream-state.ts';
export { checkUpstreamPath, UpstreamPathError, upstreamUrl } from './url.ts';
