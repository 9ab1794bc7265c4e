import { z } from 'zod';
import { attempt, epochMs } from './common.ts';

/** Why a record ended on the dead-letter topic. */
export const deadLetterReasons = [
  /** Not JSON, or not valid UTF-8. */
  'undecodable',
  /** A schema version this release does not read. */
  'unsupported-schema',
  /** JSON that does not match the topic's schema. */
  'invalid-message',
  /** Every try toward the upstream failed (or the deadline left no time for another). */
  'retries-exhausted',
  /** The request names a route the running configuration no longer has. */
  'route-unknown',
  /** Every try of a webhook failed. */
  'webhook-failed',
] as const;
export type DeadLetterReason = (typeof deadLetterReasons)[number];

/**
 * A record that could not be processed, on `sluice.dead-letters.v1`: the original record whole (value and key
 * base64, so that nothing is lost even when it was not valid text), the reason, and every try's timing and error.
 */
export const deadLetterMessage = z.object({
  reason: z.enum(deadLetterReasons),
  detail: z.string(),
  service: z.string(),
  deadLetteredAt: epochMs,
  /** The request's tracking id, when the record could be read far enough to know it. */
  requestId: z.string().optional(),
  tenant: z.string().optional(),
  original: z.object({
    topic: z.string(),
    partition: z.number().int(),
    offset: z.string(),
    timestamp: epochMs,
    key: z.string().nullable(),
    value: z.string().nullable(),
    headers: z.record(z.string(), z.string()),
  }),
  attempts: z.array(attempt),
});
export type DeadLetterMessage = z.infer<typeof deadLetterMessage>;
