import { isIPv4, isIPv6 } from 'node:net';
import { z } from 'zod';

/** Tenant ids and route names appear in topic names, metrics and URLs: lower-case, digits and dashes. */
const name = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lower-case letters, digits and "-", at most 63');

export const httpMethods = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
export type HttpMethod = (typeof httpMethods)[number];

const apiKey = z.strictObject({
  /** A name for the key in logs and metrics; never the key. */
  id: z.string().min(1),
  /** Hex SHA-256 of the key. Keys are random and long, so a fast hash is enough (as GitHub tokens do). */
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'hex SHA-256 of the key (64 lower-case hex digits)'),
});
export type ApiKeyEntry = z.infer<typeof apiKey>;

const rate = z.strictObject({
  requestsPerSecond: z.number().positive().max(1_000_000),
  /** Requests allowed at once above the steady rate (the bucket's size). */
  burst: z.number().int().min(1).max(1_000_000),
});
export type RateConfig = z.infer<typeof rate>;

const tenant = z.strictObject({
  apiKeys: z.array(apiKey).min(1),
  /** Routes this tenant may use; any other answers 403. */
  routes: z.array(name).min(1),
  /** Standard Webhooks signing secret (`whsec_` + base64); callbacks of a tenant without one are refused. */
  webhookSecret: z
    .string()
    .regex(/^whsec_[A-Za-z0-9+/]{32,}={0,2}$/, 'whsec_ followed by at least 24 bytes in base64')
    .optional(),
  /** Publish this tenant's completions to its own result topic. */
  resultTopic: z.boolean().default(false),
  /**
   * Requests this tenant may submit, shared by every ingress replica when the state store is shared (Redis); a
   * batch counts each of its requests. Above it: 429 with RateLimit-* and Retry-After. Unlimited when absent.
   */
  rateLimit: rate.optional(),
  /** Open Server-Sent Event streams this tenant may hold per ingress replica, instead of the global limit. */
  maxEventStreams: z.number().int().min(1).max(100_000).optional(),
});
export type TenantConfig = z.infer<typeof tenant>;

const target = z.strictObject({
  /** Base URL; a request's path is appended to its path. */
  url: z.url({ protocol: /^https?$/, error: 'an http or https URL' }),
  /** Relative share under weighted round robin and consistent hashing. */
  weight: z.number().int().min(1).max(1_000).default(1),
  /** Where the target runs: locality-aware routing prefers targets in the worker's own region and zone. */
  region: z.string().min(1).optional(),
  zone: z.string().min(1).optional(),
});
export type TargetConfig = z.infer<typeof target>;

export const balancerPolicies = [
  'round-robin',
  'weighted-round-robin',
  'least-request',
  'consistent-hash',
] as const;

/** Passive health (Envoy's outlier detection): its defaults are Envoy's. */
const outlierDetection = z.strictObject({
  consecutiveFailures: z.number().int().min(1).default(5),
  /** Eject above this failure rate (percent) within an interval, once minRequests were seen; off when absent. */
  failureRatePercent: z.number().min(1).max(100).optional(),
  minRequests: z.number().int().min(1).default(10),
  intervalMs: z.number().int().min(100).default(10_000),
  baseEjectionMs: z.number().int().min(1).default(30_000),
  maxEjectionMs: z.number().int().min(1).default(300_000),
  maxEjectionPercent: z.number().min(0).max(100).default(10),
  /** Below this share of healthy targets every target is used again (panic mode). */
  panicThresholdPercent: z.number().min(0).max(100).default(50),
});

const healthCheck = z.strictObject({
  /** Path probed on every target; any 2xx is healthy. */
  path: z.string().regex(/^\//).default('/healthz'),
  intervalMs: z.number().int().min(100).default(5_000),
  timeoutMs: z.number().int().min(10).default(1_000),
  healthyThreshold: z.number().int().min(1).default(2),
  unhealthyThreshold: z.number().int().min(1).default(3),
});

const circuitBreaker = z.strictObject({
  failureThreshold: z.number().int().min(1).default(5),
  openMs: z.number().int().min(1).default(30_000),
  halfOpenProbes: z.number().int().min(1).default(1),
});

const retryBudget = z.strictObject({
  percent: z.number().min(0).max(100).default(20),
  minRetries: z.number().int().min(0).default(3),
});

const adaptive = z.strictObject({
  /** Lower the upstream's rate when it answers 429 or Retry-After, and climb back while it is healthy. */
  enabled: z.boolean().default(true),
  decreaseFactor: z.number().min(0.05).max(0.95).default(0.5),
});

const upstream = z.strictObject({
  targets: z.array(target).min(1),
  balancer: z.enum(balancerPolicies).default('round-robin'),
  /** What consistent hashing hashes: the ordering key, the path, or a request header. */
  hashOn: z
    .union([z.enum(['key', 'path']), z.strictObject({ header: z.string().min(1).toLowerCase() })])
    .default('key'),
  /** Prefer targets in the worker's REGION and ZONE; spill over when they are ejected or saturated. */
  locality: z.boolean().default(false),
  protocol: z.enum(['http1', 'http2']).default('http1'),
  outlierDetection: outlierDetection.default(outlierDetection.parse({})),
  healthCheck: healthCheck.optional(),
  circuitBreaker: circuitBreaker.default(circuitBreaker.parse({})),
  retryBudget: retryBudget.default(retryBudget.parse({})),
  /** The whole upstream's rate, across its targets (per worker process). */
  rateLimit: rate.optional(),
  /** Each target's rate. */
  targetRateLimit: rate.optional(),
  /** Requests in flight toward the whole upstream from one worker. */
  maxConcurrent: z.number().int().min(1).max(100_000).optional(),
  /** Per-tenant shares of this upstream; tenants without an entry share what is left fairly. */
  tenantQuotas: z.record(z.string(), rate).optional(),
  adaptive: adaptive.default(adaptive.parse({})),
});
export type UpstreamConfig = z.infer<typeof upstream>;

/** Request coalescing: the upstream takes a JSON array of request bodies and answers an array in the same order. */
const coalesce = z.strictObject({
  format: z.literal('json-array').default('json-array'),
  maxSize: z.number().int().min(2).max(1_000),
  maxWaitMs: z.number().int().min(1).max(60_000),
  /** Path of the batch endpoint below the target URL. */
  path: z.string().regex(/^\//).default('/'),
  /** An array element with this numeric field at 400 or above is that item's failure. */
  itemStatusField: z.string().min(1).default('status'),
});
export type CoalesceConfig = z.infer<typeof coalesce>;

const retry = z.strictObject({
  /** Tries in all, the first included. */
  maxAttempts: z.number().int().min(1).max(50).default(5),
  /** Backoff before the second try; doubles per try, with full jitter. */
  baseDelayMs: z.number().int().min(1).default(200),
  maxDelayMs: z.number().int().min(1).default(30_000),
});

const deadline = z.strictObject({
  /** When a request gives no deadlineMs. Every request has a deadline, so every request ends. */
  defaultMs: z
    .number()
    .int()
    .min(1_000)
    .default(24 * 60 * 60 * 1000),
  maxMs: z
    .number()
    .int()
    .min(1_000)
    .default(24 * 60 * 60 * 1000),
});

const route = z.strictObject({
  /** `queue` (the default): accepted, queued and called by batch-workers. `direct`: proxied by the ingress. */
  mode: z.enum(['queue', 'direct']).default('queue'),
  methods: z
    .array(z.enum(httpMethods))
    .min(1)
    .default([...httpMethods]),
  upstream,
  coalesce: coalesce.optional(),
  /** One try's time limit, connection to last byte. */
  timeoutMs: z.number().int().min(1).max(600_000).default(30_000),
  /**
   * This route's body limit instead of limits.maxBodyBytes. Direct routes stream bodies and may allow large ones;
   * queued bodies travel in Kafka records, so a queue route stays within 64 MiB.
   */
  maxBodyBytes: z
    .number()
    .int()
    .min(1)
    .max(4 * 1024 * 1024 * 1024)
    .optional(),
  /** Requests in flight toward this route's upstream from one worker. */
  concurrency: z.number().int().min(1).max(10_000).default(64),
  retry: retry.default(retry.parse({})),
  deadline: deadline.default(deadline.parse({})),
});
export type RouteConfig = z.infer<typeof route>;

const limits = z.strictObject({
  maxBodyBytes: z
    .number()
    .int()
    .min(1)
    .max(64 * 1024 * 1024)
    .default(1024 * 1024),
  maxHeaderCount: z.number().int().min(8).max(1_000).default(100),
  maxHeaderBytes: z
    .number()
    .int()
    .min(1_024)
    .max(64 * 1024)
    .default(16 * 1024),
  maxBatchRequests: z.number().int().min(1).max(1_000).default(1_000),
  /** The whole JSON body of POST /v1/batches. */
  maxBatchBytes: z
    .number()
    .int()
    .min(1_024)
    .max(256 * 1024 * 1024)
    .default(16 * 1024 * 1024),
  maxWaitSeconds: z.number().int().min(0).max(60).default(60),
  /** Open Server-Sent Event streams per tenant and ingress replica; more answer 429. */
  maxEventStreamsPerTenant: z.number().int().min(1).max(100_000).default(20),
  /** Larger upstream answers fail the try instead of filling memory and records. */
  maxResponseBytes: z
    .number()
    .int()
    .min(1_024)
    .max(16 * 1024 * 1024)
    .default(1024 * 1024),
});
export type Limits = z.infer<typeof limits>;

const lanes = z.strictObject({
  /** Shares of dispatches guaranteed to the lower lanes while they have work, so that nothing starves. */
  minShare: z
    .strictObject({
      normal: z.number().min(0).max(0.5).default(0.2),
      low: z.number().min(0).max(0.5).default(0.1),
    })
    .default({ normal: 0.2, low: 0.1 }),
});

/** An IPv4 or IPv6 network in CIDR notation, e.g. 10.20.0.0/16 or fd00::/8. */
const cidr = z
  .string()
  .refine((value) => isCidr(value), 'an IPv4 or IPv6 network in CIDR notation, e.g. 10.20.0.0/16');

const callbacks = z.strictObject({
  /**
   * Callback URLs may resolve to loopback, private and link-local addresses only when this is on (tests, or a
   * gateway whose tenants live inside the same network).
   */
  allowPrivateNetworks: z.boolean().default(false),
  /**
   * Networks that callbacks may reach although they are private, loopback or link-local: the narrow
   * alternative to allowPrivateNetworks (e.g. the network of an internal webhook relay). Checked against the
   * address the callback's host resolves to, when connecting.
   */
  allowNetworks: z.array(cidr).max(100).default([]),
});

const backpressure = z
  .strictObject({
    /**
     * Requests waiting for the batch-workers (consumer lag over the request topics) above which tenants
     * submitting more than their fair share of recent traffic are answered 429 with Retry-After.
     */
    shedLag: z.number().int().min(1).default(500_000),
    /** Waiting requests above which every submission is answered 503 with Retry-After. */
    rejectLag: z.number().int().min(1).default(2_000_000),
    /**
     * How long a replica's oldest submission may wait for Kafka's acknowledgement before new submissions are
     * answered 503 with Retry-After at once: the broker or the replica does not keep up now, and queueing more
     * connections would only make every client wait until its own time-out.
     */
    maxAcceptWaitMs: z.number().int().min(50).max(60_000).default(1_000),
    /**
     * How late the ingress's event loop may run before a growing share of new submissions is refused with 503
     * and Retry-After at the top of the HTTP handling: past its capacity a replica that takes everything queues
     * requests in its own loop until clients give up. 60000 turns shedding off in practice.
     */
    maxEventLoopDelayMs: z.number().int().min(10).max(60_000).default(100),
    /**
     * Submissions (not `Prefer: wait` holds) one ingress replica handles at once, from their first byte to their
     * answer; a new one beyond it is answered 503 at-capacity with Retry-After at once. By Little's law the
     * latency of those admitted stays at most this over the replica's completion rate, and a client whose pool
     * is full gets quick refusals instead of queueing behind slow acceptances.
     */
    maxSubmissionsInFlight: z.number().int().min(1).max(1_000_000).default(512),
    /**
     * How long the requests already queued may keep a new `Prefer: wait` submission from a worker (the lag over
     * the drain rate) before it is answered 503 with Retry-After: its client would wait for the queue, not the
     * work, and give up at its own time-out. Submissions without Prefer: wait are queued regardless.
     */
    maxQueueWaitMs: z.number().int().min(100).max(3_600_000).default(5_000),
  })
  .refine((value) => value.rejectLag > value.shedLag, {
    message: 'rejectLag must be larger than shedLag',
    path: ['rejectLag'],
  });

export const gatewayConfigSchema = z
  .strictObject({
    version: z.literal(1),
    tenants: z.record(name, tenant),
    admins: z.strictObject({ apiKeys: z.array(apiKey).min(1) }).optional(),
    routes: z.record(name, route),
    limits: limits.default(limits.parse({})),
    lanes: lanes.default(lanes.parse({})),
    callbacks: callbacks.default(callbacks.parse({})),
    backpressure: backpressure.default(backpressure.parse({})),
  })
  .superRefine((config, ctx) => {
    for (const [tenantId, entry] of Object.entries(config.tenants)) {
      for (const [index, routeName] of entry.routes.entries()) {
        if (routeNamed(config, routeName) === undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['tenants', tenantId, 'routes', index],
            message: `route "${routeName}" is not declared under routes`,
          });
        }
      }
    }
    const seen = new Map<string, string>();
    const keys = [
      ...Object.entries(config.tenants).flatMap(([tenantId, entry]) =>
        entry.apiKeys.map((key, index) => ({ key, path: ['tenants', tenantId, 'apiKeys', index] })),
      ),
      ...(config.admins?.apiKeys ?? []).map((key, index) => ({ key, path: ['admins', 'apiKeys', index] })),
    ];
    for (const { key, path } of keys) {
      const previous = seen.get(key.sha256);
      if (previous !== undefined) {
        ctx.addIssue({ code: 'custom', path, message: `the same key hash is already used at ${previous}` });
      }
      seen.set(key.sha256, path.join('.'));
    }
    for (const [routeName, entry] of Object.entries(config.routes)) {
      if (entry.deadline.defaultMs > entry.deadline.maxMs) {
        ctx.addIssue({
          code: 'custom',
          path: ['routes', routeName, 'deadline', 'defaultMs'],
          message: 'must not exceed deadline.maxMs',
        });
      }
      if (entry.mode === 'queue' && (entry.maxBodyBytes ?? 0) > 64 * 1024 * 1024) {
        ctx.addIssue({
          code: 'custom',
          path: ['routes', routeName, 'maxBodyBytes'],
          message: 'a queued body travels in a Kafka record: at most 64 MiB (67108864)',
        });
      }
      if (entry.mode === 'direct' && entry.coalesce !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['routes', routeName, 'coalesce'],
          message: 'a direct route is proxied request by request; coalescing needs mode: queue',
        });
      }
      for (const tenantId of Object.keys(entry.upstream.tenantQuotas ?? {})) {
        if (!(tenantId in config.tenants)) {
          ctx.addIssue({
            code: 'custom',
            path: ['routes', routeName, 'upstream', 'tenantQuotas', tenantId],
            message: `tenant "${tenantId}" is not declared under tenants`,
          });
        }
      }
      if (entry.retry.baseDelayMs > entry.retry.maxDelayMs) {
        ctx.addIssue({
          code: 'custom',
          path: ['routes', routeName, 'retry', 'baseDelayMs'],
          message: 'must not exceed retry.maxDelayMs',
        });
      }
    }
  });

export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;

function isCidr(value: string): boolean {
  const [address, bits, ...rest] = value.split('/');
  if (address === undefined || bits === undefined || rest.length > 0 || !/^\d{1,3}$/.test(bits)) return false;
  const prefix = Number(bits);
  if (isIPv4(address)) return prefix <= 32;
  return isIPv6(address) && prefix <= 128;
}

/**
 * The route of that name, or undefined. Own properties only: the routes are a plain object, and a name like
 * "constructor" must not find Object.prototype's.
 */
export function routeNamed(config: Pick<GatewayConfig, 'routes'>, name: string): RouteConfig | undefined {
  return Object.hasOwn(config.routes, name) ? config.routes[name] : undefined;
}
