import type { IdempotencyScope } from './types.ts';

/**
 * Where the Redis store keeps what, below one prefix so that deployments and tests can share a server. Braces
 * mark Redis Cluster hash tags: everything of one batch shares the batch's slot, so a script over a batch runs on
 * one node.
 *
 * | key | type | holds |
 * | --- | --- | --- |
 * | `<prefix>{<batchId>}:statuses` | hash | request id → encoded status, every request of the batch |
 * | `<prefix>id:<id>` | string | `<generation>\n<batchId>[\n<earlier batchId>...]`: where a lookup by id finds the request |
 * | `<prefix>idem:{<tenant>}:<key>` | string | JSON `{id, fingerprint, expiresAt}` of an idempotency claim |
 * | `<prefix>rl:{<key>}` | hash | `origin` and `tat` of a GCRA bucket |
 * | `<prefix>ch:{<batchId>}` | channel | JSON arrays of a batch's changed statuses |
 * | `<prefix>filled` | string | when the store was first filled from the status topic; gone when Redis lost its data |
 */
export class RedisKeys {
  readonly prefix: string;

  constructor(prefix: string) {
    // A brace in the prefix would become every key's hash tag and put the whole store in one slot.
    if (/[{}]/.test(prefix)) throw new Error(`a Redis key prefix must not contain braces: ${prefix}`);
    this.prefix = prefix;
  }

  batch(batchId: string): string {
    return `${this.prefix}{${batchId}}:statuses`;
  }

  request(id: string): string {
    return `${this.prefix}id:${id}`;
  }

  idempotency(scope: IdempotencyScope): string {
    return `${this.prefix}idem:{${scope.tenant}}:${scope.key}`;
  }

  rateLimit(key: string): string {
    return `${this.prefix}rl:{${key}}`;
  }

  channel(batchId: string): string {
    return `${this.prefix}ch:{${batchId}}`;
  }

  filled(): string {
    return `${this.prefix}filled`;
  }

  /** PSUBSCRIBE pattern matching every batch channel of this prefix (glob characters of the prefix escaped). */
  allChannels(): string {
    return `${this.prefix.replace(/[*?[\]\\]/g, '\\$&')}ch:*`;
  }
}
