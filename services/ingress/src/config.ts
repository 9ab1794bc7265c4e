import { envInt, gatewayEnv, parseEnv, serviceEnv } from '@sluice/config';

const shape = {
  ...serviceEnv,
  ...gatewayEnv,
  /** Statuses accepted longer ago than this are forgotten by lookups (the status topic keeps 7 days). */
  STATUS_RETENTION_MS: envInt(24 * 60 * 60 * 1000, { min: 60_000 }),
  /** Upper bound of statuses the embedded store holds in memory; the oldest go first. */
  STATE_MAX_STATUSES: envInt(1_000_000, { min: 1_000 }),
  /** How often the batch-workers' lag is sampled for queue positions and estimates. */
  QUEUE_STATS_INTERVAL_MS: envInt(2_000, { min: 100 }),
  /** How long a lookup of a just-created id waits for another replica's status to arrive. */
  LOOKUP_CATCH_UP_MS: envInt(2_000, { min: 0, max: 30_000 }),
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
  return parseEnv(shape, env);
}
