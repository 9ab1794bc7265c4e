import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { KafkaError } from '../src/errors.ts';
import { ProduceBatcher } from '../src/produce-batcher.ts';
import type { ProducerRecord } from '../src/types.ts';

interface SentBatch {
  records: ProducerRecord[];
  resolve(): void;
  reject(error: unknown): void;
}

/** Stands in for the broker: records every batch and lets the test acknowledge or fail it by hand. */
class HandDrivenBroker {
  readonly batches: SentBatch[] = [];
  readonly #waiting = new Map<number, (batch: SentBatch) => void>();

  readonly sendBatch = (records: ProducerRecord[]): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const batch = { records, resolve, reject };
      this.batches.push(batch);
      this.#waiting.get(this.batches.length - 1)?.(batch);
    });

  /** Resolves with the batch at `index` once the batcher has sent it. */
  batch(index: number): Promise<SentBatch> {
    const sent = this.batches[index];
    if (sent !== undefined) return Promise.resolve(sent);
    return new Promise((resolve) => this.#waiting.set(index, resolve));
  }
}

function records(caller: string, count: number): ProducerRecord[] {
  return Array.from({ length: count }, (_, i) => ({
    topic: 'sluice.test.v1',
    key: caller,
    value: `${caller}${i}`,
  }));
}

function observe(promise: Promise<unknown>): { state: 'pending' | 'resolved' | 'rejected'; error?: unknown } {
  const seen: { state: 'pending' | 'resolved' | 'rejected'; error?: unknown } = { state: 'pending' };
  promise.then(
    () => {
      seen.state = 'resolved';
    },
    (error: unknown) => {
      seen.state = 'rejected';
      seen.error = error;
    },
  );
  return seen;
}

/** One real event-loop turn, so that every promise reaction already queued has run before asserting on state. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

function setup(options: { lingerMs: number; maxBatchRecords: number }) {
  const broker = new HandDrivenBroker();
  const batcher = new ProduceBatcher({ ...options, sendBatch: broker.sendBatch });
  return { broker, batcher };
}

describe('ProduceBatcher', () => {
  beforeEach(() => {
    // Only the linger timer is faked; setImmediate stays real for settle().
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  it('sends concurrent callers inside the linger window in one batch, once the window ends', async () => {
    const { broker, batcher } = setup({ lingerMs: 5, maxBatchRecords: 100 });
    const a = records('a', 1);
    const b = records('b', 2);
    const c = records('c', 1);
    const sends = [batcher.send(a), batcher.send(b), batcher.send(c)];

    vi.advanceTimersByTime(4);
    expect(broker.batches).toHaveLength(0);
    vi.advanceTimersByTime(1);
    expect(broker.batches).toHaveLength(1);
    expect(broker.batches[0]?.records).toEqual([...a, ...b, ...c]);

    broker.batches[0]?.resolve();
    await Promise.all(sends);
    expect(broker.batches).toHaveLength(1);
  });

  it('queues sends made while a batch is in flight and sends them together as soon as it returns', async () => {
    const { broker, batcher } = setup({ lingerMs: 10, maxBatchRecords: 100 });
    const first = batcher.send(records('a', 1));
    vi.advanceTimersByTime(10);
    const inFlight = await broker.batch(0);

    const b = records('b', 1);
    const c = records('c', 2);
    const second = observe(batcher.send(b));
    const third = observe(batcher.send(c));
    vi.advanceTimersByTime(100);
    await settle();
    expect(broker.batches).toHaveLength(1);
    expect(second.state).toBe('pending');

    inFlight.resolve();
    await first;
    const next = await broker.batch(1);
    expect(next.records).toEqual([...b, ...c]);
    await settle();
    expect([second.state, third.state]).toEqual(['pending', 'pending']);

    next.resolve();
    await settle();
    expect([second.state, third.state]).toEqual(['resolved', 'resolved']);
    expect(broker.batches).toHaveLength(2);
  });

  it('with no linger, sends at once while idle and batches only what arrives while a send is in flight', async () => {
    const { broker, batcher } = setup({ lingerMs: 0, maxBatchRecords: 100 });
    const a = records('a', 1);
    const first = batcher.send(a);
    // No timer to wait for: the first record leaves on its own.
    expect(broker.batches).toHaveLength(1);
    expect(broker.batches[0]?.records).toEqual(a);

    const b = records('b', 1);
    const c = records('c', 1);
    const rest = [batcher.send(b), batcher.send(c)];
    expect(broker.batches).toHaveLength(1);
    broker.batches[0]?.resolve();
    await first;
    const next = await broker.batch(1);
    expect(next.records).toEqual([...b, ...c]);
    next.resolve();
    await Promise.all(rest);
    expect(broker.batches).toHaveLength(2);
  });

  it('splits batches at maxBatchRecords between callers but never inside one caller', async () => {
    const { broker, batcher } = setup({ lingerMs: 10, maxBatchRecords: 3 });
    const a = records('a', 2);
    const b = records('b', 2);
    const c = records('c', 1);
    const sendA = batcher.send(a);
    const sendB = batcher.send(b);
    // Reaching maxBatchRecords sends without waiting for the linger window.
    expect(broker.batches).toHaveLength(1);
    expect(broker.batches[0]?.records).toEqual(a);
    const sendC = batcher.send(c);

    broker.batches[0]?.resolve();
    const second = await broker.batch(1);
    expect(second.records).toEqual([...b, ...c]);
    second.resolve();
    await Promise.all([sendA, sendB, sendC]);

    const big = records('big', 5);
    const sendBig = batcher.send(big);
    const third = await broker.batch(2);
    expect(third.records).toEqual(big);
    third.resolve();
    await sendBig;
    expect(broker.batches).toHaveLength(3);
  });

  it('rejects every caller of a failed batch with a KAFKA_PRODUCE error carrying the cause, and keeps working', async () => {
    const { broker, batcher } = setup({ lingerMs: 5, maxBatchRecords: 100 });
    const a = observe(batcher.send(records('a', 1)));
    const b = observe(batcher.send(records('b', 1)));
    vi.advanceTimersByTime(5);
    const failing = await broker.batch(0);
    const c = observe(batcher.send(records('c', 1)));

    const cause = new Error('NOT_ENOUGH_REPLICAS');
    failing.reject(cause);
    const retry = await broker.batch(1);
    await settle();
    for (const caller of [a, b]) {
      expect(caller.state).toBe('rejected');
      expect(caller.error).toBeInstanceOf(KafkaError);
      expect(caller.error).toMatchObject({ code: 'KAFKA_PRODUCE', cause });
    }
    expect(c.state).toBe('pending');

    retry.resolve();
    await settle();
    expect(c.state).toBe('resolved');

    const later = batcher.send(records('d', 1));
    vi.advanceTimersByTime(5);
    (await broker.batch(2)).resolve();
    await expect(later).resolves.toBeUndefined();
  });

  it('passes a KafkaError thrown by sendBatch to the callers unchanged', async () => {
    const { broker, batcher } = setup({ lingerMs: 0, maxBatchRecords: 100 });
    const sending = batcher.send(records('a', 1));
    const error = new KafkaError('KAFKA_CONNECT', 'no broker reachable', { retryable: true });
    (await broker.batch(0)).reject(error);
    await expect(sending).rejects.toBe(error);
  });

  it('rejects sends after close with a KAFKA_CLOSED error', async () => {
    const { broker, batcher } = setup({ lingerMs: 5, maxBatchRecords: 100 });
    await batcher.close();
    const sending = batcher.send(records('a', 1));
    await expect(sending).rejects.toBeInstanceOf(KafkaError);
    await expect(sending).rejects.toMatchObject({ code: 'KAFKA_CLOSED' });
    expect(broker.batches).toHaveLength(0);
  });

  it('closes only after every queued record has been sent, without waiting for the linger window', async () => {
    const { broker, batcher } = setup({ lingerMs: 1_000, maxBatchRecords: 2 });
    const a = records('a', 2);
    const b = records('b', 1);
    const sendA = observe(batcher.send(a));
    const sendB = observe(batcher.send(b));
    expect(broker.batches).toHaveLength(1);

    const closing = observe(batcher.close());
    const refused = observe(batcher.send(records('late', 1)));
    broker.batches[0]?.resolve();
    const last = await broker.batch(1);
    expect(last.records).toEqual(b);
    await settle();
    expect(sendA.state).toBe('resolved');
    expect(closing.state).toBe('pending');

    last.resolve();
    await settle();
    expect([sendB.state, closing.state]).toEqual(['resolved', 'resolved']);
    expect(refused.state).toBe('rejected');
    expect(broker.batches).toHaveLength(2);
  });

  it('resolves an empty send without sending a batch', async () => {
    const { broker, batcher } = setup({ lingerMs: 5, maxBatchRecords: 100 });
    await expect(batcher.send([])).resolves.toBeUndefined();
    vi.advanceTimersByTime(5);
    await batcher.close();
    expect(broker.batches).toHaveLength(0);
  });
});
