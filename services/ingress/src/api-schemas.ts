import { httpMethods } from '@sluice/gateway-config';
import { z } from 'zod';

/**
 * The public API's shapes. The same schemas validate requests and generate /openapi.json, so the document can
 * never drift from what the ingress accepts. Every object is strict: an unknown field is an error, not ignored.
 */
export const api = z.registry<{ id: string; description?: string }>();

const routeName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/)
  .describe('A route of the gateway configuration.');

export const callbackSchema = z
  .strictObject({
    url: z
      .url({ protocol: /^https?$/, error: 'callback.url must be an http or https URL' })
      .max(2_048)
      .describe('Receives the Standard Webhooks-signed result.'),
  })
  .register(api, { id: 'Callback' });

/**
 * Any JSON value. Registered because its schema is recursive: unregistered, the generator puts it in a shared
 * `$defs` and refers to it as `#/components/schemas/__shared#/$defs/schema0`, a reference nothing can resolve.
 */
const jsonValue = z.json().register(api, { id: 'JsonValue' });

const queryValue = z.union([z.string().max(4_096), z.array(z.string().max(4_096)).max(100)]);

/** The fields of one request, shared by POST /v1/requests and the items of POST /v1/batches. */
const requestFields = {
  route: routeName,
  method: z.enum(httpMethods),
  path: z
    .string()
    .min(1)
    .max(2_048)
    .regex(/^\//, 'path must start with "/"')
    .describe("Path below the route's upstream base URL."),
  query: z.record(z.string().max(256), queryValue).optional(),
  headers: z
    .record(
      z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$/, 'an HTTP header name (RFC 9110 token)'),
      z
        .string()
        .max(8_192)
        // biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is exactly what this pattern refuses.
        .regex(/^[^\x00\r\n]*$/, 'no NUL, CR or LF in a header value'),
    )
    .optional(),
  body: jsonValue.optional().describe('JSON body; a string is sent as text, anything else as JSON.'),
  bodyBase64: z.base64().optional().describe('A body of any bytes, base64.'),
  priority: z.enum(['high', 'normal', 'low']).optional(),
  key: z
    .string()
    .min(1)
    .max(256)
    .optional()
    .describe('Ordering key: requests with one key reach the upstream in order.'),
  deadlineMs: z
    .number()
    .int()
    .min(1_000)
    .optional()
    .describe('Milliseconds from acceptance after which the request is no longer sent (status expired).'),
};

export const requestSubmission = z
  .strictObject({
    ...requestFields,
    idempotencyKey: z.string().min(1).max(256).optional(),
    callback: callbackSchema.optional(),
  })
  .refine((value) => value.body === undefined || value.bodyBase64 === undefined, {
    message: 'give body or bodyBase64, not both',
    path: ['bodyBase64'],
  })
  .register(api, { id: 'RequestSubmission' });
export type RequestSubmission = z.infer<typeof requestSubmission>;

export const batchItemSubmission = z
  .strictObject(requestFields)
  .refine((value) => value.body === undefined || value.bodyBase64 === undefined, {
    message: 'give body or bodyBase64, not both',
    path: ['bodyBase64'],
  })
  .register(api, { id: 'BatchItemSubmission' });
export type BatchItemSubmission = z.infer<typeof batchItemSubmission>;

export const batchSubmission = z
  .strictObject({
    requests: z.array(batchItemSubmission).min(1).describe('At most the configured maximum (1000).'),
    idempotencyKey: z.string().min(1).max(256).optional(),
    callback: callbackSchema.optional(),
  })
  .register(api, { id: 'BatchSubmission' });
export type BatchSubmissionBody = z.infer<typeof batchSubmission>;

const statusEnum = z.enum(['queued', 'processing', 'succeeded', 'failed', 'expired', 'dead']);

export const queueEstimate = z
  .strictObject({
    position: z.number().int().nonnegative().describe('Requests ahead of this one in the queue.'),
    estimatedMs: z
      .number()
      .int()
      .nonnegative()
      .nullable()
      .describe('Expected wait from the measured drain rate; null while no rate has been measured.'),
  })
  .register(api, { id: 'QueueEstimate' });

export const acceptedResponse = z
  .strictObject({
    id: z.string(),
    status: statusEnum,
    statusUrl: z.string(),
    queue: queueEstimate,
  })
  .register(api, { id: 'Accepted' });

export const resultSchema = z
  .strictObject({
    status: z.number().int(),
    headers: z.record(z.string(), z.string()),
    body: z.string().optional(),
    bodyBase64: z.string().optional(),
  })
  .register(api, { id: 'Result' });

export const requestStatusDocument = z
  .strictObject({
    id: z.string(),
    batchId: z.string(),
    route: z.string(),
    status: statusEnum,
    attempts: z.number().int().nonnegative(),
    result: resultSchema.optional(),
    error: z.strictObject({ code: z.string(), message: z.string() }).optional(),
    redrives: z
      .number()
      .int()
      .positive()
      .optional()
      .describe('How many times an operator sent the request again after it ended dead; absent when never.'),
    timings: z.strictObject({
      acceptedAt: z.iso.datetime(),
      startedAt: z.iso.datetime().optional(),
      finishedAt: z.iso.datetime().optional(),
    }),
  })
  .register(api, { id: 'RequestStatus' });
export type RequestStatusDocument = z.infer<typeof requestStatusDocument>;

export const batchAcceptedResponse = z
  .strictObject({ batchId: z.string(), ids: z.array(z.string()), statusUrl: z.string() })
  .register(api, { id: 'BatchAccepted' });

const counts = z.strictObject(
  Object.fromEntries(statusEnum.options.map((s) => [s, z.number().int()])) as Record<
    z.infer<typeof statusEnum>,
    z.ZodNumber
  >,
);

export const batchStatusDocument = z
  .strictObject({
    batchId: z.string(),
    status: z.enum(['open', 'completed']),
    total: z.number().int(),
    counts,
    items: z.array(requestStatusDocument),
  })
  .register(api, { id: 'BatchStatus' });
export type BatchStatusDocument = z.infer<typeof batchStatusDocument>;

export const problemDocument = z
  .looseObject({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string().optional(),
    instance: z.string().optional(),
    errors: z.array(z.strictObject({ path: z.string(), message: z.string() })).optional(),
  })
  .register(api, { id: 'Problem', description: 'RFC 9457 problem details.' });

export const redriveFilter = z
  .strictObject({
    tenant: z.string().min(1).max(63).optional(),
    route: z.string().min(1).max(63).optional(),
    reason: z.enum(['retries-exhausted', 'route-unknown']).optional(),
    deadLetteredAfter: z.iso.datetime({ offset: true }).optional(),
    deadLetteredBefore: z.iso.datetime({ offset: true }).optional(),
    limit: z.number().int().min(1).max(1_000).default(100),
    dryRun: z.boolean().default(false).describe('List what would be redriven, and send nothing.'),
  })
  .register(api, { id: 'RedriveFilter' });

const redriven = z.strictObject({
  id: z.string(),
  batchId: z.string(),
  generation: z.number().int().positive(),
});

export const redrivenResponse = z
  .strictObject({ ...redriven.shape, statusUrl: z.string() })
  .register(api, { id: 'Redriven' });
const skipped = z.strictObject({
  id: z.string(),
  reason: z.enum(['not-dead', 'already-redriven', 'status-unknown']),
  status: statusEnum.optional(),
});

export const redriveOutcome = z
  .strictObject({
    matched: z.number().int().nonnegative().describe('Dead-lettered requests that matched.'),
    dryRun: z.boolean(),
    redriven: z.array(redriven),
    skipped: z.array(skipped),
    ids: z.array(z.string()).optional().describe('With dryRun: the ids that matched.'),
  })
  .register(api, { id: 'RedriveOutcome' });
