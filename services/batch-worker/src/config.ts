import { envInt, parseEnv, serviceEnv } from '@sluice/config';

const shape = {
  ...serviceEnv,
  /** Requests processed at once by this instance; above it, fetching pauses. */
  WORKER_MAX_IN_FLIGHT: envInt(256, { min: 1, max: 100_000 }),
};

export type Config = ReturnType<typeof loadConfig>;

/** Parses and validates this service's environment once, at start-up. */
export function loadConfig(env: NodeJS.ProcessEnv) {
  return parseEnv(shape, env);
}
