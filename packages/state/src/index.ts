export { EmbeddedStateStore, type EmbeddedStoreOptions } from './embedded.ts';
export { rateLimitDecision } from './rate-limit.ts';
export { type StateErrorCode, StateUnavailableError, stateErrorCodes } from './redis-errors.ts';
export type { RedisKeys } from './redis-keys.ts';
export { createRedisStateStore, RedisStateStore, type RedisStateStoreOptions } from './redis-store.ts';
export { StatusFeed, type StatusFeedOptions } from './status-feed.ts';
export type {
  IdempotencyClaim,
  IdempotencyScope,
  RateLimitDecision,
  RateLimitRule,
  StateStore,
  StatusListener,
} from './types.ts';
