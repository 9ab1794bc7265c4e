import { ConfigError, envBoolean, envInt, gatewayEnv, parseEnv, serviceEnv, z } from '@sluice/config';

const shape = {
  ...serviceEnv,
  ...gatewayEnv,
  /** Statuses accepted longer ago than this are forgotten by lookups (the status topic keeps 7 days). */
  STATUS_RETENTION_MS: envInt(24 * 60 * 60 * 1000, { min: 60_000 }),
  /** Upper bound of statuses the embedded store holds in memory; the oldest go first. */
  STATE_MAX_STATUSES: envInt(1_000_000, { min: 1_000 }),
  /** How often the batch-workers' lag is sampled for queue positions and estimates. */
  QUEUE_STATS_INTERVAL_MS: envInt(2_000, { min: 100 }),
  /**
   * Connections the kernel may hold for the ingress before it accepts them (listen(2)'s backlog, capped by the
   * kernel's net.core.somaxconn). Node's default of 511 overflows when many clients connect at once: the kernel
   * then drops their SYNs and each retries after 1, 3, 7 s, which looks like seconds of latency to them.
   */
  HTTP_LISTEN_BACKLOG: envInt(4_096, { min: 1, max: 65_535 }),
  /** How long a lookup of a just-created id waits for another replica's status to arrive. */
  LOOKUP_CATCH_UP_MS: envInt(2_000, { min: 0, max: 30_000 }),
  /** Where statuses, idempotency keys and rate-limit counters live: this process (embedded) or Redis, shared. */
  STATE_STORE: z.enum(['embedded', 'redis']).default('embedded'),
  /**
   * How statuses reach a Redis store: `shared` (default), one consumer group of every replica on that store, so each
   * status is written once whatever the number of replicas; `every-replica`, each replica applies every status
   * (Redis writes grow with replicas; the behaviour before 0.2).
   */
  STATUS_FEED: z.enum(['shared', 'every-replica']).default('shared'),
  /** One Redis (or Valkey) server: redis://[user:password@]host:port[/db], or rediss:// for TLS. */
  REDIS_URL: z.url({ protocol: /^rediss?$/ }).optional(),
  /** A Redis Cluster instead: comma-separated host:port of some of its nodes. */
  REDIS_CLUSTER_NODES: z
    .string()
    .transform((value) => value.split(',').map((node) => node.trim()))
    .pipe(z.array(z.string().regex(/^[^\s:]+:\d+$/, 'expected host:port[,host:port...]')).min(1))
    .optional(),
  /** Credentials and TLS for the nodes of REDIS_CLUSTER_NODES (REDIS_URL carries its own). */
  REDIS_USERNAME: z.string().min(1).optional(),
  REDIS_PASSWORD: z.string().min(1).optional(),
  REDIS_TLS: envBoolean(false),
  /** Prefix of every Redis key, to share one Redis between deployments. */
  REDIS_KEY_PREFIX: z
    .string()
    .regex(/^[^{}\s]*$/, 'no braces or spaces')
    .default('sluice:'),
};

export type Config = ReturnType<typeof loadConfig>;

/** The provisioning job's environment: Kafka settings, and the gateway file for tenants' result topics. */
export function loadProvisionConfig(env: NodeJS.ProcessEnv) {
  return parseEnv(
    { ...serviceEnv, ...gatewayEnv, SLUICE_GATEWAY_CONFIG: gatewayEnv.SLUICE_GATEWAY_CONFIG.optional() },
    env,
  );
}

/** Parses and validates the ingress environment once, at start-up. */
export function loadConfig(env: NodeJS.ProcessEnv) {
  const config = parseEnv(shape, env);
  if (
    config.STATE_STORE === 'redis' &&
    (config.REDIS_URL === undefined) === (config.REDIS_CLUSTER_NODES === undefined)
  ) {
    throw new ConfigError(['STATE_STORE=redis needs exactly one of REDIS_URL and REDIS_CLUSTER_NODES']);
  }
  if (
    config.REDIS_URL !== undefined &&
    (config.REDIS_USERNAME ?? config.REDIS_PASSWORD ?? config.REDIS_TLS)
  ) {
    throw new ConfigError([
      'REDIS_USERNAME, REDIS_PASSWORD and REDIS_TLS are for REDIS_CLUSTER_NODES; put them in REDIS_URL (rediss://user:password@host:port)',
    ]);
  }
  return config;
}
