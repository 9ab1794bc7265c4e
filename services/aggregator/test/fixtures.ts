import { trace } from '@opentelemetry/api';
import { createKafkaClient, type Producer } from '@sluice/kafka';
import { uniqueName } from '@sluice/testkit';
import { inject } from 'vitest';
import { Aggregator } from '../src/aggregator.ts';
import { clockDueAt, type ReducerSettings } from '../src/batch-reducer.ts';
import { BatchStore } from '../src/batch-store.ts';

/**
 * An aggregator's surroundings on the test kit's broker: its four topics (one partition each, unique names), a
 * producer and a started batch store. `close` removes what it made.
 */
export async function aggregatorFixture(settings: ReducerSettings) {
  const brokers = inject('kafkaBrokers').split(',');
  const kafka = createKafkaClient('platformatic', { brokers, clientId: uniqueName('aggregator') });
  const admin = kafka.admin();
  const topics = {
    state: uniqueName('batch-state'),
    status: uniqueName('status'),
    completions: uniqueName('completions'),
    deadLetters: uniqueName('dead-letters'),
  };
  await admin.createTopics(
    Object.values(topics).map((name) => ({ name, partitions: 1, replicationFactor: 1, config: {} })),
  );
  const producer = kafka.producer();
  await producer.connect();
  const store = new BatchStore({
    client: kafka,
    topic: topics.state,
    groupId: uniqueName('batch-state-reader'),
    clockDueAt: (state) => clockDueAt(state, settings),
    onInvalid: () => {},
  });
  await store.start();
  return {
    kafka,
    admin,
    topics,
    producer,
    store,
    outputTopics: { status: topics.status, completions: topics.completions, deadLetters: topics.deadLetters },
    close: async () => {
      await store.close();
      await producer.close();
      await admin.deleteTopics(Object.values(topics));
      await admin.close();
    },
  };
}

/** An aggregator over a fixture's store and topics, writing with `producer` (the fixture's unless told) at `now`. */
export function aggregatorOn(
  fixture: Awaited<ReturnType<typeof aggregatorFixture>>,
  settings: ReducerSettings,
  options: { producer?: Producer; now?: () => number } = {},
): Aggregator {
  return new Aggregator({
    producer: options.producer ?? fixture.producer,
    store: fixture.store,
    topics: fixture.outputTopics,
    settings,
    tracer: trace.getTracer('test'),
    ...(options.now !== undefined ? { now: options.now } : {}),
  });
}
