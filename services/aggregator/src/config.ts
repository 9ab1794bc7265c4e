import { envInt, parseEnv, serviceEnv } from '@sluice/config';

const shape = {
  ...serviceEnv,
  /** Results folded at once by this instance (results of one batch are always folded one after another). */
  AGGREGATOR_MAX_IN_FLIGHT: envInt(1_000, { min: 1, max: 100_000 }),
  /** How often overdue batches are expired and old closed ones forgotten. */
  AGGREGATOR_SWEEP_INTERVAL_MS: envInt(1_000, { min: 50 }),
  /** How long a completed batch is remembered so that late duplicates of its results are ignored. */
  AGGREGATOR_CLOSED_RETENTION_MS: envInt(10 * 60 * 1000, { min: 1_000 }),
  /** How long results wait for their batch's announcement before they are dropped as orphans. */
  AGGREGATOR_ORPHAN_TIMEOUT_MS: envInt(60 * 60 * 1000, { min: 1_000 }),
};

export type Config = ReturnType<typeof loadConfig>;

/** Parses and validates this service's environment once, at start-up. */
export function loadConfig(env: NodeJS.ProcessEnv) {
  return parseEnv(shape, env);
}
