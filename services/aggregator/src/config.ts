import { envInt, parseEnv, serviceEnv } from '@sluice/config';

const shape = {
  ...serviceEnv,
  /** Results folded at once by this instance. */
  AGGREGATOR_MAX_IN_FLIGHT: envInt(1_000, { min: 1, max: 100_000 }),
};

export type Config = ReturnType<typeof loadConfig>;

/** Parses and validates this service's environment once, at start-up. */
export function loadConfig(env: NodeJS.ProcessEnv) {
  return parseEnv(shape, env);
}
