/** Kafka header names every Sluice record carries. Values are UTF-8 strings. */
export const recordHeaders = {
  requestId: 'sluice-request-id',
  batchId: 'sluice-batch-id',
  tenant: 'sluice-tenant',
  schemaVersion: 'sluice-schema-version',
  /** W3C Trace Context, so that one trace follows a request across every service. */
  traceparent: 'traceparent',
  tracestate: 'tracestate',
} as const;
