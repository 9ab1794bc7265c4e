import { envInt, gatewayEnv, parseEnv, serviceEnv } from '@sluice/config';

const shape = {
  ...serviceEnv,
  ...gatewayEnv,
  /** Deliveries in progress at once in this instance. */
  DELIVERY_MAX_IN_FLIGHT: envInt(256, { min: 1, max: 100_000 }),
  /** Webhooks waiting for their next try, held at once (a group of their own, like the worker's retries). */
  WEBHOOK_RETRY_MAX_IN_FLIGHT: envInt(2_000, { min: 1, max: 100_000 }),
  /** One webhook try's limit, connect to last byte. */
  WEBHOOK_TIMEOUT_MS: envInt(10_000, { min: 100, max: 120_000 }),
  /** Tries of a webhook in all, the first included; then it is dead-lettered. */
  WEBHOOK_MAX_ATTEMPTS: envInt(8, { min: 1, max: 50 }),
  /** Backoff before the second try; doubles per try with full jitter, up to the maximum. */
  WEBHOOK_BASE_DELAY_MS: envInt(5_000, { min: 1 }),
  WEBHOOK_MAX_DELAY_MS: envInt(2 * 60 * 60 * 1000, { min: 1 }),
};

export type Config = ReturnType<typeof loadConfig>;

/** Parses and validates this service's environment once, at start-up. */
export function loadConfig(env: NodeJS.ProcessEnv) {
  return parseEnv(shape, env);
}
