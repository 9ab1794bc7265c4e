/** Kafka header names Sluice records carry. Values are UTF-8 strings. */
export const recordHeaders = {
  requestId: 'sluice-request-id',
  batchId: 'sluice-batch-id',
  tenant: 'sluice-tenant',
  /** The record schema's version; a consumer dead-letters a version it does not know instead of guessing. */
  schemaVersion: 'sluice-schema-version',
  /** Which message of a topic's closed list the value holds (see each topic's schema module). */
  kind: 'sluice-kind',
  /** Epoch milliseconds before which a retry record must not be processed. */
  notBefore: 'sluice-not-before',
  /** Why a record was dead-lettered: one of {@link deadLetterReasons}. */
  deadLetterReason: 'sluice-dead-letter-reason',
  /** W3C Trace Context, so that one trace follows a request across every service. */
  traceparent: 'traceparent',
  tracestate: 'tracestate',
} as const;

/** The schema version every record of this release carries; decoders accept exactly the versions listed. */
export const currentSchemaVersion = 1;
export const supportedSchemaVersions: readonly number[] = [1];
