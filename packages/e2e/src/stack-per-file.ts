import { afterAll, beforeAll, inject } from 'vitest';
import { type Stack, type StackOptions, startStack } from './harness.ts';

/**
 * One stack for a test file: started before its tests on the run's broker (unless the options name other
 * brokers), stopped after them. The options are read when the stack starts, so they may use what earlier
 * `beforeAll` hooks of the file started (a silent server, a Redis, a cluster); hooks registered after this call
 * run once the stack is up, and their `afterAll`s before it stops.
 */
export function stackPerFile(
  options: () => Omit<StackOptions, 'brokers'> & { brokers?: string },
  setupTimeoutMs = 180_000,
): () => Stack {
  let stack: Stack | undefined;
  beforeAll(async () => {
    stack = await startStack({ brokers: inject('kafkaBrokers'), ...options() });
  }, setupTimeoutMs);
  afterAll(async () => {
    await stack?.stop();
  });
  return () => {
    if (stack === undefined) throw new Error('the stack is used before its beforeAll started it');
    return stack;
  };
}
