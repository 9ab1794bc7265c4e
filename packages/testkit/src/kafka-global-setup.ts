import type { TestProject } from 'vitest/node';
import { startKafka } from './kafka/launcher.ts';
import type { KafkaHandle } from './kafka/types.ts';

import './provided-context.ts';

let handle: KafkaHandle | undefined;

/** Starts one broker for the test run (or takes KAFKA_BROKERS) and hands its address to every test file. */
export async function setup(project: TestProject): Promise<void> {
  handle = await startKafka();
  project.provide('kafkaBrokers', handle.bootstrap);
}

export async function teardown(): Promise<void> {
  await handle?.stop();
}
