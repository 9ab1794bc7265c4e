/** Closed list of failure codes of the Kafka package; decisions switch on these, never on message text. */
export const kafkaErrorCodes = {
  connect: 'KAFKA_CONNECT',
  produce: 'KAFKA_PRODUCE',
  commit: 'KAFKA_COMMIT',
  consume: 'KAFKA_CONSUME',
  admin: 'KAFKA_ADMIN',
  closed: 'KAFKA_CLOSED',
  topicMismatch: 'KAFKA_TOPIC_MISMATCH',
} as const;
export type KafkaErrorCode = (typeof kafkaErrorCodes)[keyof typeof kafkaErrorCodes];

export class KafkaError extends Error {
  readonly code: KafkaErrorCode;
  /** Whether the same operation may succeed if tried again (broker unavailable, leader moving, timeouts). */
  readonly retryable: boolean;

  constructor(code: KafkaErrorCode, message: string, options: { cause?: unknown; retryable?: boolean } = {}) {
    super(message, { cause: options.cause });
    this.name = 'KafkaError';
    this.code = code;
    this.retryable = options.retryable ?? isRetryableCause(options.cause);
  }
}

/** Both client libraries mark transient failures: kafkajs with `retriable`, platformatic with `canRetry`. */
function isRetryableCause(cause: unknown): boolean {
  if (typeof cause !== 'object' || cause === null) return false;
  const flags = cause as { retriable?: unknown; canRetry?: unknown };
  return flags.retriable === true || flags.canRetry === true;
}
