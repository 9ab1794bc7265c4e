import { EmbeddedStateStore, RedisStateStore, type StateStore } from '@sluice/state';
import type { Config } from './config.ts';

export interface IngressState {
  /** Statuses, idempotency keys and rate-limit counters. */
  store: StateStore;
  /** This replica's own counters, for rate limits while a shared store does not answer. */
  local: StateStore;
  /** Marks the status feed's first read done (the embedded store answers lookups only after it). */
  loaded(): void;
  /**
   * Whether the ingress may take traffic as far as state goes. Redis being away is not a reason: submissions
   * without an Idempotency-Key are still accepted (Kafka is the source of truth); lookups answer 503 meanwhile.
   */
  ready(): boolean;
  /**
   * Calls `refill` when the shared store lost its data (Redis restarted empty), checked every `intervalMs`; one
   * replica, the first to notice, refills it from the status topic.
   */
  watchForDataLoss(refill: () => Promise<void>, intervalMs: number): void;
  close(): Promise<void>;
}

/** The store the configuration names: embedded (this process, fed from the status topic) or Redis, shared. */
export function openState(env: Config, onError: (error: unknown) => void): IngressState {
  const embedded = () =>
    new EmbeddedStateStore({ retentionMs: env.STATUS_RETENTION_MS, maxStatuses: env.STATE_MAX_STATUSES });
  if (env.STATE_STORE === 'embedded') {
    const store = embedded();
    return {
      store,
      local: store,
      loaded: () => store.markReady(),
      ready: () => store.ready(),
      // This process's memory is the store: it cannot lose data while the process lives.
      watchForDataLoss: () => {},
      close: () => store.close(),
    };
  }
  const store = new RedisStateStore({
    url: env.REDIS_URL,
    // ioredis takes cluster nodes as "host:port".
    nodes: env.REDIS_CLUSTER_NODES,
    username: env.REDIS_USERNAME,
    password: env.REDIS_PASSWORD,
    tls: env.REDIS_TLS,
    keyPrefix: env.REDIS_KEY_PREFIX,
    retentionMs: env.STATUS_RETENTION_MS,
    onError,
  });
  const local = new EmbeddedStateStore({ retentionMs: env.STATUS_RETENTION_MS, maxStatuses: 100_000 });
  local.markReady();
  let timer: NodeJS.Timeout | undefined;
  let refilling = false;
  return {
    store,
    local,
    // The feed's first read has filled the store (or another replica's did): mark it, so that a loss shows.
    loaded: () => void store.markFilled().catch(onError),
    ready: () => true,
    watchForDataLoss: (refill, intervalMs) => {
      timer = setInterval(() => {
        if (refilling || !store.ready()) return;
        refilling = true;
        store
          .markFilled()
          .then((marker) => (marker === 'created' ? refill() : undefined))
          .catch(onError)
          .finally(() => {
            refilling = false;
          });
      }, intervalMs);
      timer.unref();
    },
    close: async () => {
      if (timer !== undefined) clearInterval(timer);
      await store.close();
      await local.close();
    },
  };
}
