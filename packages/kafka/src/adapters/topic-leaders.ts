import pRetry from 'p-retry';
import { KafkaError, kafkaErrorCodes } from '../errors.ts';

class LeadersPending extends Error {}

/**
 * Returns once `allLed` reports a leader for every partition of topics just created, so that the caller's next
 * describe, produce or subscribe finds them. Right after CreateTopics the controller knows the topic while a broker's
 * metadata may not yet (UNKNOWN_TOPIC_OR_PARTITION) or may know it without a leader (LEADER_NOT_AVAILABLE). Both pass
 * within moments, later on a loaded machine, so every retryable answer is asked again until `timeoutMs`; kafkajs's
 * own `waitForLeaders` retries only the second and failed CI runs with the first.
 */
export async function awaitTopicLeaders(
  allLed: () => Promise<boolean>,
  options: { timeoutMs?: number } = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  try {
    await pRetry(
      async () => {
        if (!(await allLed())) throw new LeadersPending('a partition has no leader yet');
      },
      {
        retries: Number.POSITIVE_INFINITY,
        minTimeout: 50,
        maxTimeout: 500,
        maxRetryTime: timeoutMs,
        shouldRetry: ({ error }) =>
          error instanceof LeadersPending || (error instanceof KafkaError && error.retryable),
      },
    );
  } catch (cause) {
    if (cause instanceof KafkaError && !cause.retryable) throw cause;
    throw new KafkaError(kafkaErrorCodes.admin, `created topics had no leader within ${timeoutMs} ms`, {
      cause,
      retryable: true,
    });
  }
}
