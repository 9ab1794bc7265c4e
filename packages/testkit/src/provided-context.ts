import type {} from 'vitest';

declare module 'vitest' {
  /** Values the test kit's global setup provides to every test file through inject(). */
  export interface ProvidedContext {
    /** Bootstrap address of the run's broker, KAFKA_BROKERS format. */
    kafkaBrokers: string;
  }
}
