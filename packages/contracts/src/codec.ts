import type { z } from 'zod';
import { currentSchemaVersion, recordHeaders, supportedSchemaVersions } from './headers.ts';
import type { DeadLetterReason } from './messages/dead-letter.ts';

/** What every consumed record looks like to a codec: structurally the Kafka package's ConsumedRecord. */
export interface EncodedRecord {
  value: Buffer | null;
  headers: Record<string, string>;
}

export type Decoded<T> =
  | { ok: true; value: T }
  | {
      ok: false;
      reason: Extract<DeadLetterReason, 'undecodable' | 'unsupported-schema' | 'invalid-message'>;
      detail: string;
    };

/**
 * Serialises one topic's messages as JSON with the schema version in a header, and reads them back validated.
 * A record that cannot be read is not an exception: the caller gets the reason and dead-letters the record, so
 * that one poison record never stalls its partition.
 */
export class Codec<Schema extends z.ZodType> {
  readonly #schema: Schema;

  constructor(schema: Schema) {
    this.#schema = schema;
  }

  /** The value and the schema-version header; callers add the headers of their own (ids, tenant, trace). */
  encode(message: z.infer<Schema>): { value: Buffer; headers: Record<string, string> } {
    return {
      value: Buffer.from(JSON.stringify(message)),
      headers: { [recordHeaders.schemaVersion]: String(currentSchemaVersion) },
    };
  }

  decode(record: EncodedRecord): Decoded<z.infer<Schema>> {
    const version = Number(record.headers[recordHeaders.schemaVersion] ?? Number.NaN);
    if (!supportedSchemaVersions.includes(version)) {
      return {
        ok: false,
        reason: 'unsupported-schema',
        detail: `schema version ${record.headers[recordHeaders.schemaVersion] ?? '(missing)'} is not one of ${supportedSchemaVersions.join(', ')}`,
      };
    }
    if (record.value === null) return { ok: false, reason: 'undecodable', detail: 'record has no value' };
    let json: unknown;
    try {
      json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(record.value));
    } catch (error) {
      return { ok: false, reason: 'undecodable', detail: `not UTF-8 JSON: ${(error as Error).message}` };
    }
    const parsed = this.#schema.safeParse(json);
    if (!parsed.success) {
      const detail = parsed.error.issues
        .slice(0, 5)
        .map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`)
        .join('; ');
      return { ok: false, reason: 'invalid-message', detail };
    }
    return { ok: true, value: parsed.data };
  }
}
