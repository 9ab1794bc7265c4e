import { z } from 'zod';
import { api, batchItemSubmission, requestSubmission } from './api-schemas.ts';
import { problemTypes } from './problems.ts';

const ref = (id: string) => ({ $ref: `#/components/schemas/${id}` });
const json = (id: string) => ({ 'application/json': { schema: ref(id) } });
const problem = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: ref('Problem') } },
});
const errors = (...slugs: Array<keyof typeof problemTypes>) =>
  Object.fromEntries(
    [...new Set(slugs.map((slug) => problemTypes[slug].status))].map((status) => [
      String(status),
      problem(
        slugs
          .filter((slug) => problemTypes[slug].status === status)
          .map((slug) => problemTypes[slug].title)
          .join('; '),
      ),
    ]),
  );
const preferWait = {
  name: 'Prefer',
  in: 'header',
  required: false,
  description:
    'RFC 7240 `wait=N` (N at most the configured maximum, 60): hold until the request is terminal.',
  schema: { type: 'string', examples: ['wait=10'] },
};
const idempotencyKey = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  description: 'Same key and content within 24 h returns the original; another content answers 422.',
  schema: { type: 'string', maxLength: 256 },
};
const idParam = (name: string) => ({ name, in: 'path', required: true, schema: { type: 'string' } });
/** One Server-Sent Event of GET /v1/batches/{id}/events, as its fields arrive. */
const batchEvent = {
  type: 'object',
  properties: {
    id: { type: 'string', description: 'Sequence number within the stream.' },
    event: { type: 'string', enum: ['progress', 'item', 'completed'] },
    data: {
      type: 'string',
      contentMediaType: 'application/json',
      description:
        '`progress` and `completed`: the batch counts (BatchStatus without items); `item`: a RequestStatus.',
    },
  },
  required: ['id', 'event', 'data'],
};
const acceptedHeaders = {
  Location: { schema: { type: 'string' }, description: 'The status URL.' },
  'Retry-After': {
    schema: { type: 'integer' },
    description: 'Seconds until a status lookup is worth making.',
  },
  'Sluice-Request-Id': { schema: { type: 'string' } },
};
const submitErrors = errors(
  'invalid-json',
  'validation',
  'invalid-prefer',
  'unauthenticated',
  'forbidden',
  'unknown-route',
  'method-not-allowed',
  'too-large',
  'idempotency-conflict',
  'headers-too-large',
  'rate-limited',
  'load-shed',
  'enqueue-failed',
  'overloaded',
  'at-capacity',
  'state-unavailable',
);

let cached: object | undefined;

/** The OpenAPI 3.1 document, generated from the schemas that validate requests (committed as openapi.json). */
export function openApiDocument(): object {
  cached ??= {
    openapi: '3.1.0',
    info: {
      title: 'Sluice ingress',
      version: '1',
      description:
        'Accepts API calls, buffers them durably in Kafka and lets workers call the upstreams. Errors are RFC 9457 problem documents.',
    },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'A tenant API key.' },
        admin: { type: 'http', scheme: 'bearer', description: 'An admin API key (operators only).' },
      },
      schemas: z.toJSONSchema(api, {
        target: 'draft-2020-12',
        uri: (id) => `#/components/schemas/${id}`,
        // A refine does not reach the generated schema; this one rule is stated by hand, so that clients and
        // generators built from the document do not send both.
        override: ({ zodSchema, jsonSchema }) => {
          if (zodSchema === requestSubmission || zodSchema === batchItemSubmission) {
            jsonSchema.not = { required: ['body', 'bodyBase64'] };
          }
        },
      }).schemas,
    },
    security: [{ bearer: [] }],
    paths: {
      '/v1/requests': {
        post: {
          operationId: 'submitRequest',
          summary: 'Queue one request',
          parameters: [preferWait, idempotencyKey],
          requestBody: { required: true, content: json('RequestSubmission') },
          responses: {
            '200': {
              description: 'Terminal within the Prefer wait (or a replay of a finished request).',
              content: json('RequestStatus'),
            },
            '202': {
              description: 'Accepted and durably queued.',
              headers: acceptedHeaders,
              content: json('Accepted'),
            },
            ...submitErrors,
          },
        },
      },
      '/v1/requests/{id}': {
        get: {
          operationId: 'getRequest',
          summary: "A request's status and result",
          parameters: [idParam('id'), preferWait],
          responses: {
            '200': { description: 'The status.', content: json('RequestStatus') },
            ...errors('invalid-prefer', 'unauthenticated', 'forbidden', 'not-found', 'state-unavailable'),
          },
        },
      },
      '/v1/batches': {
        post: {
          operationId: 'submitBatch',
          summary: 'Queue up to 1000 requests together',
          parameters: [idempotencyKey],
          requestBody: { required: true, content: json('BatchSubmission') },
          responses: {
            '202': { description: 'Accepted and durably queued.', content: json('BatchAccepted') },
            ...submitErrors,
          },
        },
      },
      '/v1/batches/{id}': {
        get: {
          operationId: 'getBatch',
          summary: "A batch's counts per status and each request's status",
          parameters: [idParam('id')],
          responses: {
            '200': { description: 'The batch.', content: json('BatchStatus') },
            ...errors('unauthenticated', 'forbidden', 'not-found', 'state-unavailable'),
          },
        },
      },
      '/v1/batches/{id}/events': {
        get: {
          operationId: 'streamBatch',
          summary: "Server-Sent Events of a batch's progress until it completes",
          parameters: [idParam('id')],
          responses: {
            '200': {
              description: 'Events `progress`, `item` and, last, `completed`.',
              // Before OpenAPI 3.2's itemSchema, the schema of an event stream describes one event.
              content: { 'text/event-stream': { schema: batchEvent } },
            },
            ...errors('unauthenticated', 'forbidden', 'not-found', 'too-many-streams', 'state-unavailable'),
          },
        },
      },
      '/v1/requests/{id}/redrive': {
        post: {
          operationId: 'redriveRequest',
          summary: 'Send a dead request again (admin)',
          description:
            'Same id, a batch of its own (`<id>.r<generation>`), the next generation, a fresh try budget; the earlier tries stay as history.',
          security: [{ admin: [] }],
          parameters: [idParam('id')],
          responses: {
            '202': {
              description: 'Queued again.',
              headers: { Location: acceptedHeaders.Location },
              content: json('Redriven'),
            },
            ...errors('unauthenticated', 'forbidden', 'not-found', 'not-redrivable', 'enqueue-failed'),
          },
        },
      },
      '/v1/redrives': {
        post: {
          operationId: 'redriveMatching',
          summary: 'Send again every dead request a filter matches (admin)',
          security: [{ admin: [] }],
          requestBody: { required: true, content: json('RedriveFilter') },
          responses: {
            '200': { description: 'dryRun: what matched; nothing sent.', content: json('RedriveOutcome') },
            '202': {
              description: 'What was queued again, and what was skipped.',
              content: json('RedriveOutcome'),
            },
            ...errors('invalid-json', 'validation', 'unauthenticated', 'forbidden', 'enqueue-failed'),
          },
        },
      },
    },
  };
  return cached;
}

/**
 * Every documented path, in Express's syntax, with the methods it answers (a GET answers HEAD too): what a 405's
 * `Allow` header lists when a documented path is asked with another method.
 */
export function documentedMethods(): Array<{ path: string; methods: string[] }> {
  const { paths } = openApiDocument() as { paths: Record<string, Record<string, unknown>> };
  return Object.entries(paths).map(([template, operations]) => {
    const methods = Object.keys(operations).map((method) => method.toUpperCase());
    if (methods.includes('GET')) methods.push('HEAD');
    return { path: template.replaceAll(/\{(\w+)\}/g, ':$1'), methods };
  });
}
