import { envInt, gatewayEnv, parseEnv, serviceEnv } from '@sluice/config';

const shape = {
  ...serviceEnv,
  ...gatewayEnv,
  /** New requests processed (or waiting for their upstream) at once by this instance; above it, fetching pauses. */
  WORKER_MAX_IN_FLIGHT: envInt(1_024, { min: 1, max: 100_000 }),
  /**
   * Tries waiting for one upstream (rate limit, concurrency, health) beyond which the partitions that feed it
   * are paused, so that one saturated upstream does not fill the worker with its requests.
   */
  WORKER_UPSTREAM_BACKLOG: envInt(256, { min: 1, max: 100_000 }),
  /**
   * Retry records held at once while they wait for their not-before time. Waiting costs a timer, not a
   * connection, so the bound is larger; retries never take the slots of new requests (a group of their own).
   */
  RETRY_MAX_IN_FLIGHT: envInt(2_000, { min: 1, max: 100_000 }),
};

export type Config = ReturnType<typeof loadConfig>;

/** Parses and validates this service's environment once, at start-up. */
export function loadConfig(env: NodeJS.ProcessEnv) {
  return parseEnv(shape, env);
}
