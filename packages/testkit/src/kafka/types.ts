export type KafkaSource = 'env' | 'testcontainers' | 'jvm';

/** A running Kafka the tests or the start command can use. */
export interface KafkaHandle {
  source: KafkaSource;
  /** Comma-separated bootstrap addresses, the format of KAFKA_BROKERS. */
  bootstrap: string;
  /** One address per broker, in node-id order. */
  brokers: string[];
  /** Stops every broker this handle started and deletes its data; a no-op for a broker from KAFKA_BROKERS. */
  stop(): Promise<void>;
  /** Kills one broker (SIGKILL) to simulate a crash; only for brokers this handle started. */
  killBroker(index: number): Promise<void>;
  /** Starts a killed broker again on the same port and data. */
  restartBroker(index: number): Promise<void>;
  /** Broker processes and data folders, for brokers left running by `pnpm kafka:up`. */
  processes?(): Array<{ pid: number | undefined; dataDir: string }>;
}

export class KafkaUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KafkaUnavailableError';
  }
}
