export { EmbeddedStateStore, type EmbeddedStoreOptions } from './embedded.ts';
export { rateLimitDecision } from './rate-limit.ts';
export { StatusFeed, type StatusFeedOptions } from './status-feed.ts';
export type {
  IdempotencyClaim,
  IdempotencyScope,
  RateLimitDecision,
  RateLimitRule,
  StateStore,
  StatusListener,
} from './types.ts';
