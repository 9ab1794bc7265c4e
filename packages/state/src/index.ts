export { EmbeddedStateStore, type EmbeddedStoreOptions, supersedes } from './embedded.ts';
export { StatusFeed, type StatusFeedOptions } from './status-feed.ts';
export type { IdempotencyClaim, IdempotencyScope, StateStore, StatusListener } from './types.ts';
