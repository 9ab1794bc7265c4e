import { envInt, parseEnv, serviceEnv } from '@sluice/config';

const shape = {
  ...serviceEnv,
  /** Deliveries in progress at once in this instance. */
  DELIVERY_MAX_IN_FLIGHT: envInt(256, { min: 1, max: 100_000 }),
};

export type Config = ReturnType<typeof loadConfig>;

/** Parses and validates this service's environment once, at start-up. */
export function loadConfig(env: NodeJS.ProcessEnv) {
  return parseEnv(shape, env);
}
