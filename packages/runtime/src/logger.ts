import { trace } from '@opentelemetry/api';
import { type Logger, pino } from 'pino';

export type { Logger };

/** JSON logs to stdout. Secrets are redacted by path wherever they might be logged by mistake. */
export function createLogger(
  service: string,
  level: string,
  instance?: string,
  destination: pino.DestinationStream = pino.destination(1),
): Logger {
  return pino(
    {
      level,
      base: { service, ...(instance ? { instance } : {}) },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Every line written inside a traced context names its trace and span, so logs and traces meet.
      mixin: () => {
        const span = trace.getActiveSpan()?.spanContext();
        return span === undefined ? {} : { trace_id: span.traceId, span_id: span.spanId };
      },
      redact: {
        // Credentials by name wherever they sit up to three levels down (a header map, an error's request...).
        paths: [...credentialPaths(), '*.body', '*.bodyBase64', '*.*.body'],
        censor: '[redacted]',
      },
    },
    destination,
  );
}

/** Field names that carry a credential: the Sluice key, other schemes' keys, cookies, secrets. */
const credentialNames = [
  'authorization',
  'proxy-authorization',
  'x-api-key',
  'cookie',
  'set-cookie',
  'apiKey',
  'secret',
  'webhookSecret',
  'password',
];

function credentialPaths(): string[] {
  // pino's redact paths take one wildcard per level; bracket notation admits names with a dash.
  return credentialNames.flatMap((name) => {
    const key = `["${name}"]`;
    return [key, `*${key}`, `*.*${key}`, `*.*.*${key}`];
  });
}
