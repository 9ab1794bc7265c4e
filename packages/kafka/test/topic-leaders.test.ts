import { describe, expect, it } from 'vitest';
import { awaitTopicLeaders } from '../src/adapters/topic-leaders.ts';
import { KafkaError, kafkaErrorCodes } from '../src/errors.ts';

/** The answers a broker's metadata gives right after CreateTopics, one per call, then `last` for ever. */
function metadataAnswers(answers: Array<boolean | Error>, last: boolean | Error = true) {
  let calls = 0;
  const allLed = async (): Promise<boolean> => {
    const answer = answers[calls] ?? last;
    calls += 1;
    if (answer instanceof Error) throw answer;
    return answer;
  };
  return { allLed, calls: () => calls };
}

const unknownTopic = new KafkaError(kafkaErrorCodes.admin, 'describe topics failed', {
  cause: Object.assign(new Error('This server does not host this topic-partition'), { retriable: true }),
});

describe('awaitTopicLeaders', () => {
  it('asks again while the topic is unknown to the broker or has a partition without a leader', async () => {
    const broker = metadataAnswers([unknownTopic, unknownTopic, false, false]);
    await awaitTopicLeaders(broker.allLed);
    expect(broker.calls()).toBe(5);
  });

  it('stops at the first error that is not retryable and reports it as it was', async () => {
    const denied = new KafkaError(kafkaErrorCodes.admin, 'describe topics failed', {
      cause: new Error('Topic authorization failed'),
    });
    const broker = metadataAnswers([unknownTopic, denied]);
    await expect(awaitTopicLeaders(broker.allLed)).rejects.toBe(denied);
    expect(broker.calls()).toBe(2);
  });

  it('fails, retryable, with the last answer as its cause when the leaders never come', async () => {
    const broker = metadataAnswers([], unknownTopic);
    const failure = await awaitTopicLeaders(broker.allLed, { timeoutMs: 300 }).catch(
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(KafkaError);
    expect(failure).toMatchObject({ code: kafkaErrorCodes.admin, retryable: true, cause: unknownTopic });
    expect(broker.calls()).toBeGreaterThan(1);
  });
});
