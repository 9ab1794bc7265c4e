import { type Logger, pino } from 'pino';

export type { Logger };

/** JSON logs to stdout. Secrets are redacted by path wherever they might be logged by mistake. */
export function createLogger(service: string, level: string, instance?: string): Logger {
  return pino({
    level,
    base: { service, ...(instance ? { instance } : {}) },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: ['*.authorization', '*.headers.authorization', '*.apiKey', '*.secret', '*.password', '*.body'],
      censor: '[redacted]',
    },
  });
}
