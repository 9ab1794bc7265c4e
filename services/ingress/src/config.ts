import { parseEnv, serviceEnv } from '@sluice/config';

const shape = {
  ...serviceEnv,
};

export type Config = ReturnType<typeof loadConfig>;

/** Parses and validates the ingress environment once, at start-up. */
export function loadConfig(env: NodeJS.ProcessEnv) {
  return parseEnv(shape, env);
}
