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
        paths: [
          '*.authorization',
          '*.headers.authorization',
          '*.apiKey',
          '*.secret',
          '*.webhookSecret',
          '*.password',
          '*.body',
          '*.bodyBase64',
          '*.*.authorization',
          '*.*.headers.authorization',
        ],
        censor: '[redacted]',
      },
    },
    destination,
  );
}
