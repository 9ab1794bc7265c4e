import { z } from 'zod';

export class ConfigError extends Error {
  readonly problems: string[];

  constructor(problems: string[]) {
    super(`invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/**
 * Parses environment variables with a zod object schema whose keys are the variable names. Every problem is
 * reported at once, each naming its variable, so that a bad deployment is fixed in one round.
 */
export function parseEnv<Shape extends z.ZodRawShape>(
  shape: Shape,
  env: NodeJS.ProcessEnv,
): z.infer<z.ZodObject<Shape>> {
  const result = z.object(shape).safeParse(env);
  if (result.success) return result.data;
  throw new ConfigError(
    result.error.issues.map((issue) => {
      // The variable is the first path segment; deeper segments (an item of a list variable) are detail.
      const name = String(issue.path[0] ?? '(environment)');
      const value = env[name];
      return `${name}: ${issue.message}${value === undefined ? ' (not set)' : ''}`;
    }),
  );
}

/** Environment booleans: "true"/"1"/"yes" and "false"/"0"/"no", anything else is an error. */
export const envBoolean = (fallback: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'])
    .default(fallback ? 'true' : 'false')
    .transform((value) => value === 'true' || value === '1' || value === 'yes');

export const envInt = (fallback: number, { min = 0, max = Number.MAX_SAFE_INTEGER } = {}) =>
  z.coerce.number().int().min(min).max(max).default(fallback);

/** Variables every service reads: Kafka connection, HTTP port, logging, shutdown and identity. */
export const serviceEnv = {
  /** Comma-separated bootstrap brokers, host:port. */
  KAFKA_BROKERS: z
    .string()
    .min(1)
    .transform((value) => value.split(',').map((address) => address.trim()))
    .pipe(z.array(z.string().regex(/^[^\s:]+:\d+$/, 'expected host:port[,host:port...]')).min(1)),
  /** Which client library the Kafka package uses underneath. */
  KAFKA_CLIENT: z.enum(['platformatic', 'kafkajs']).default('platformatic'),
  KAFKA_TLS: envBoolean(false),
  KAFKA_SASL_MECHANISM: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']).optional(),
  KAFKA_SASL_USERNAME: z.string().optional(),
  KAFKA_SASL_PASSWORD: z.string().optional(),
  /** The zone this instance runs in, for locality-aware routing (with REGION). */
  ZONE: z.string().min(1).optional(),
  /** Prefix of every topic and consumer group name, to share a cluster between deployments or test runs. */
  KAFKA_TOPIC_PREFIX: z
    .string()
    .regex(/^[a-zA-Z0-9._-]*$/, 'only letters, digits, ".", "_" and "-"')
    .default(''),
  /** Replication factor of topics Sluice creates: 3 in production, 1 on a single local broker. */
  KAFKA_REPLICATION_FACTOR: envInt(1, { min: 1, max: 7 }),
  /** Overrides every declared topic's partition count (e.g. small for tests). */
  KAFKA_TOPIC_PARTITIONS: z.coerce.number().int().min(1).max(10_000).optional(),
  /** How often the services check that Kafka answers (readiness, and the ingress refusing at once when not). */
  KAFKA_PROBE_INTERVAL_MS: envInt(2_000, { min: 100 }),
  /** A Kafka probe unanswered for this long marks Kafka unreachable. */
  KAFKA_PROBE_TIMEOUT_MS: envInt(3_000, { min: 100 }),
  /** Create missing topics at start-up and report drift; off where a platform team owns topics. */
  KAFKA_PROVISION_TOPICS: envBoolean(true),
  HTTP_HOST: z.string().default('0.0.0.0'),
  HTTP_PORT: envInt(8080, { max: 65_535 }),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Upper bound of a graceful shutdown; keep it below the pod's terminationGracePeriodSeconds. */
  SHUTDOWN_TIMEOUT_MS: envInt(20_000, { min: 100 }),
  /** Time in-flight work gets to finish during shutdown before it is left for redelivery. */
  DRAIN_TIMEOUT_MS: envInt(10_000, { min: 0 }),
  SERVICE_INSTANCE_ID: z.string().min(1).optional(),
  /** OTLP http/protobuf endpoint traces are exported to (a collector or Jaeger, e.g. http://jaeger:4318). */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url().optional(),
  /** Share of new traces sampled (parent-based: a request's trace is kept or dropped whole); errors always kept. */
  TRACES_SAMPLE_RATIO: z.coerce.number().min(0).max(1).default(1),
  /** How long finished spans wait to be exported together. */
  TRACES_EXPORT_DELAY_MS: envInt(2_000, { min: 10 }),
  /** Per-request log lines (access log, record handled) are written for one in this many. */
  LOG_SAMPLE_EVERY: envInt(100, { min: 1 }),
  /** The running build's version, in telemetry; images and the chart set it. */
  SERVICE_VERSION: z.string().min(1).default('0.1.0'),
  REGION: z.string().default('local'),
} as const;

export type ServiceEnv = z.infer<z.ZodObject<typeof serviceEnv>>;

/** Services that read the gateway file (tenants, routes, secrets). */
export const gatewayEnv = {
  /** Path of the gateway YAML file (see deploy/gateway.example.yaml). */
  SLUICE_GATEWAY_CONFIG: z.string().min(1),
  /** Optional YAML with the tenants' API-key hashes and webhook secrets (a Secret), merged into the gateway file. */
  SLUICE_GATEWAY_SECRETS: z.string().min(1).optional(),
  /** How often the gateway file is checked for changes, which are applied without a restart. */
  CONFIG_POLL_INTERVAL_MS: envInt(2_000, { min: 50 }),
} as const;

/** The Kafka connection settings of a parsed service environment, in the Kafka package's terms. */
export function kafkaConnectionFrom(env: ServiceEnv, clientId: string) {
  const sasl =
    env.KAFKA_SASL_MECHANISM !== undefined
      ? {
          mechanism: env.KAFKA_SASL_MECHANISM,
          username: env.KAFKA_SASL_USERNAME ?? '',
          password: env.KAFKA_SASL_PASSWORD ?? '',
        }
      : undefined;
  return {
    brokers: env.KAFKA_BROKERS,
    clientId,
    tls: env.KAFKA_TLS,
    ...(sasl ? { sasl } : {}),
  };
}

export { z };
