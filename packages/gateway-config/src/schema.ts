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
});
export type TenantConfig = z.infer<typeof tenant>;

const target = z.strictObject({
  /** Base URL; a request's path is appended to its path. */
  url: z.url({ protocol: /^https?$/, error: 'an http or https URL' }),
});
export type TargetConfig = z.infer<typeof target>;

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
  methods: z
    .array(z.enum(httpMethods))
    .min(1)
    .default([...httpMethods]),
  upstream: z.strictObject({ targets: z.array(target).min(1) }),
  /** One try's time limit, connection to last byte. */
  timeoutMs: z.number().int().min(1).max(600_000).default(30_000),
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
  /** Larger upstream answers fail the try instead of filling memory and records. */
  maxResponseBytes: z
    .number()
    .int()
    .min(1_024)
    .max(16 * 1024 * 1024)
    .default(1024 * 1024),
});
export type Limits = z.infer<typeof limits>;

const callbacks = z.strictObject({
  /**
   * Callback URLs may resolve to loopback, private and link-local addresses only when this is on (tests, or a
   * gateway whose tenants live inside the same network).
   */
  allowPrivateNetworks: z.boolean().default(false),
});

export const gatewayConfigSchema = z
  .strictObject({
    version: z.literal(1),
    tenants: z.record(name, tenant),
    admins: z.strictObject({ apiKeys: z.array(apiKey).min(1) }).optional(),
    routes: z.record(name, route),
    limits: limits.default(limits.parse({})),
    callbacks: callbacks.default(callbacks.parse({})),
  })
  .superRefine((config, ctx) => {
    for (const [tenantId, entry] of Object.entries(config.tenants)) {
      for (const [index, routeName] of entry.routes.entries()) {
        if (!(routeName in config.routes)) {
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
