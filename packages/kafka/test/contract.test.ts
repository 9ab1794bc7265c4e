import { uniqueName, waitFor } from '@sluice/testkit';
import { afterEach, describe, expect, inject, it } from 'vitest';
import {
  type ConsumedRecord,
  type Consumer,
  createKafkaClient,
  type KafkaAdapterName,
  type KafkaClient,
  kafkaAdapters,
  provisionTopics,
  TableReader,
  type TopicPartition,
} from '../src/index.ts';

const brokers = inject('kafkaBrokers').split(',');
const client = (adapter: KafkaAdapterName): KafkaClient =>
  createKafkaClient(adapter, { brokers, clientId: uniqueName(`contract-${adapter}`) });

interface Harness {
  closers: Array<() => Promise<void>>;
}
const harness: Harness = { closers: [] };
afterEach(async () => {
  for (const close of harness.closers.reverse()) await close();
  harness.closers = [];
});

async function createTopic(kafka: KafkaClient, partitions = 2, config: Record<string, string> = {}) {
  const name = uniqueName('contract');
  const admin = kafka.admin();
  harness.closers.push(() => admin.close());
  await admin.createTopics([{ name, partitions, replicationFactor: 1, config }]);
  return { name, admin };
}

/** Starts a consumer that collects every record it is handed, committing nothing unless told to. */
async function collect(
  kafka: KafkaClient,
  topic: string,
  groupId: string,
  hooks: { onAssigned?(tps: TopicPartition[]): void; onRevoked?(tps: TopicPartition[]): void } = {},
) {
  const records: ConsumedRecord[] = [];
  const consumer = kafka.consumer({
    groupId,
    topics: [topic],
    fromBeginning: true,
    sessionTimeoutMs: 10_000,
  });
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await consumer.close();
  };
  harness.closers.push(close);
  await consumer.start({
    onBatch: async (batch) => {
      records.push(...batch.records);
    },
    ...hooks,
  });
  return { consumer, records, close };
}

describe.each(kafkaAdapters)('Kafka contract on the %s adapter', (adapter) => {
  it('delivers produced records with key, value and headers, and assigns partitions by key', async () => {
    const kafka = client(adapter);
    const { name } = await createTopic(kafka, 3);
    const producer = kafka.producer();
    harness.closers.push(() => producer.close());
    await producer.send([
      { topic: name, key: 'k-1', value: 'one', headers: { 'sluice-request-id': 'r1' } },
      { topic: name, key: 'k-2', value: Buffer.from('two') },
      { topic: name, key: 'k-1', value: 'three' },
    ]);
    const { records } = await collect(kafka, name, uniqueName('g'));
    await waitFor('three records', () => records.length === 3);
    const byValue = Object.fromEntries(records.map((r) => [r.value?.toString(), r]));
    expect(byValue.one?.headers['sluice-request-id']).toBe('r1');
    expect(byValue.one?.key?.toString()).toBe('k-1');
    expect(byValue.two?.key?.toString()).toBe('k-2');
    expect(byValue.one?.partition).toBe(byValue.three?.partition);
    expect(byValue.three?.offset).toBeGreaterThan(byValue.one?.offset ?? 0n);
  });

  it('puts a key on the same partition as the other adapter does', async () => {
    const other = adapter === 'kafkajs' ? 'platformatic' : 'kafkajs';
    const kafka = client(adapter);
    const { name } = await createTopic(kafka, 6);
    const keys = Array.from({ length: 30 }, (_, i) => `order-${i}`);
    for (const producerClient of [kafka, client(other)]) {
      const producer = producerClient.producer();
      harness.closers.push(() => producer.close());
      await producer.send(keys.map((key) => ({ topic: name, key, value: producerClient.adapter })));
    }
    const { records } = await collect(kafka, name, uniqueName('g'));
    await waitFor('records from both adapters', () => records.length === keys.length * 2);
    for (const key of keys) {
      const partitions = new Set(records.filter((r) => r.key?.toString() === key).map((r) => r.partition));
      expect(partitions.size, `partitions of ${key}`).toBe(1);
    }
  });

  it('acknowledges concurrent sends from many callers', async () => {
    const kafka = client(adapter);
    const { name } = await createTopic(kafka, 2);
    const producer = kafka.producer({ lingerMs: 5, maxBatchRecords: 64 });
    harness.closers.push(() => producer.close());
    await Promise.all(
      Array.from({ length: 300 }, (_, i) => producer.send([{ topic: name, key: `k${i}`, value: `v${i}` }])),
    );
    const { records } = await collect(kafka, name, uniqueName('g'));
    await waitFor('300 records', () => records.length === 300);
    expect(new Set(records.map((r) => r.value?.toString())).size).toBe(300);
  });

  it('resumes a group from its committed offset and re-delivers what was not committed', async () => {
    const kafka = client(adapter);
    const { name } = await createTopic(kafka, 1);
    const producer = kafka.producer();
    harness.closers.push(() => producer.close());
    await producer.send(Array.from({ length: 10 }, (_, i) => ({ topic: name, key: 'k', value: `v${i}` })));
    const groupId = uniqueName('g');
    const first = await collect(kafka, name, groupId);
    await waitFor('ten records', () => first.records.length === 10);
    // Commit through the sixth record only: the next reader must start at offset 6.
    await first.consumer.commit([{ topic: name, partition: 0, offset: 6n }]);
    await first.close();
    const second = await collect(kafka, name, groupId);
    await waitFor('the four uncommitted records', () => second.records.length === 4);
    expect(second.records.map((r) => r.offset)).toEqual([6n, 7n, 8n, 9n]);
  });

  it('pauses and resumes single partitions', async () => {
    const kafka = client(adapter);
    const { name } = await createTopic(kafka, 2);
    const producer = kafka.producer();
    harness.closers.push(() => producer.close());
    const { consumer, records } = await collect(kafka, name, uniqueName('g'));
    consumer.pause([{ topic: name, partition: 0 }]);
    await producer.send([
      { topic: name, partition: 0, key: 'a', value: 'p0' },
      { topic: name, partition: 1, key: 'b', value: 'p1' },
    ]);
    await waitFor('the record of the running partition', () => records.some((r) => r.partition === 1));
    // The paused partition's record must stay back until resume, while partition 1 already flowed.
    expect(records.some((r) => r.partition === 0)).toBe(false);
    await producer.send([{ topic: name, partition: 1, key: 'b', value: 'p1-again' }]);
    await waitFor(
      'the second record of the running partition',
      () => records.filter((r) => r.partition === 1).length === 2,
    );
    expect(records.some((r) => r.partition === 0)).toBe(false);
    consumer.resume([{ topic: name, partition: 0 }]);
    await waitFor('the paused record after resume', () => records.some((r) => r.partition === 0));
  });

  it('reports assignments and revocations when a second member joins', async () => {
    const kafka = client(adapter);
    const { name } = await createTopic(kafka, 4);
    const groupId = uniqueName('g');
    const events: Record<'a' | 'b', { assigned: TopicPartition[]; revoked: TopicPartition[] }> = {
      a: { assigned: [], revoked: [] },
      b: { assigned: [], revoked: [] },
    };
    const hooks = (member: 'a' | 'b') => ({
      onAssigned: (tps: TopicPartition[]) => void events[member].assigned.push(...tps),
      onRevoked: (tps: TopicPartition[]) => void events[member].revoked.push(...tps),
    });
    const a = await collect(kafka, name, groupId, hooks('a'));
    expect(a.consumer.assignment()).toHaveLength(4);
    expect(a.consumer.isJoined()).toBe(true);
    const b = await collect(client(adapter), name, groupId, hooks('b'));
    await waitFor('a split of the four partitions', () => {
      const total = a.consumer.assignment().length + b.consumer.assignment().length;
      return total === 4 && b.consumer.assignment().length > 0 && a.consumer.assignment().length < 4;
    });
    expect(events.a.revoked.length).toBeGreaterThan(0);
    const bPartitions = new Set(b.consumer.assignment().map((tp) => tp.partition));
    for (const tp of events.a.revoked) expect(bPartitions.has(tp.partition)).toBe(true);
    await b.close();
    expect(b.consumer.isJoined()).toBe(false);
  });

  it('creates and describes topics with their configuration, and reports group lag', async () => {
    const kafka = client(adapter);
    const { name, admin } = await createTopic(kafka, 3, {
      'cleanup.policy': 'compact',
      'min.insync.replicas': '1',
    });
    const [description] = await admin.describeTopics([name, uniqueName('missing')]);
    expect(description).toMatchObject({ name, partitions: 3, replicationFactor: 1 });
    expect(description?.config['cleanup.policy']).toBe('compact');
    const producer = kafka.producer();
    harness.closers.push(() => producer.close());
    await producer.send(
      Array.from({ length: 5 }, (_, i) => ({ topic: name, partition: 0, key: `k${i}`, value: 'v' })),
    );
    const groupId = uniqueName('g');
    const reader = await collect(kafka, name, groupId);
    await waitFor('five records', () => reader.records.length === 5);
    await reader.consumer.commit([{ topic: name, partition: 0, offset: 2n }]);
    const lag = await admin.groupLag(groupId, [name]);
    expect(lag.find((p) => p.partition === 0)).toMatchObject({ committed: 2n, end: 5n, lag: 3n });
    expect(lag).toHaveLength(3);
  });

  it("reports each partition's offset range, and a table reader catches up with every writer", async () => {
    const kafka = client(adapter);
    const { name, admin } = await createTopic(kafka, 2, { 'cleanup.policy': 'compact' });
    const producer = kafka.producer();
    harness.closers.push(() => producer.close());
    await producer.send([
      { topic: name, partition: 0, key: 'a', value: '1' },
      { topic: name, partition: 0, key: 'b', value: '1' },
      { topic: name, partition: 1, key: 'c', value: '1' },
      { topic: name, partition: 0, key: 'a', value: '2' },
    ]);
    expect(await admin.topicOffsets([name])).toEqual([
      { topic: name, partition: 0, start: 0n, end: 3n },
      { topic: name, partition: 1, start: 0n, end: 1n },
    ]);
    const table = new Map<string, string | null>();
    const reader = new TableReader({
      client: kafka,
      topic: name,
      groupId: uniqueName('table'),
      apply: (record) => table.set(String(record.key), record.value?.toString() ?? null),
    });
    harness.closers.push(() => reader.close());
    await reader.start();
    // start() resolves only once everything written before it has been applied.
    expect(Object.fromEntries(table)).toEqual({ a: '2', b: '1', c: '1' });
    // A record from another producer, then a tombstone: caughtUp() sees both without polling.
    const other = client(adapter).producer();
    harness.closers.push(() => other.close());
    await other.send([
      { topic: name, partition: 1, key: 'c', value: '2' },
      { topic: name, partition: 0, key: 'b', value: null },
    ]);
    await reader.caughtUp([1]);
    expect(table.get('c')).toBe('2');
    await reader.caughtUp();
    expect(table.get('b')).toBeNull();
    expect(await reader.lag()).toBe(0n);
  });

  it('provisions missing topics idempotently and reports drift', async () => {
    const kafka = client(adapter);
    const admin = kafka.admin();
    harness.closers.push(() => admin.close());
    const spec = {
      name: uniqueName('prov'),
      partitions: 2,
      replicationFactor: 1,
      config: { 'retention.ms': '3600000' },
    };
    const first = await provisionTopics(admin, [spec]);
    expect(first.created).toEqual([spec.name]);
    const second = await provisionTopics(admin, [spec]);
    expect(second.created).toEqual([]);
    expect(second.mismatches).toEqual([]);
    const drifted = await provisionTopics(admin, [
      { ...spec, partitions: 4, config: { 'retention.ms': '60000' } },
    ]);
    expect(drifted.mismatches.map((m) => m.field).sort()).toEqual(['config.retention.ms', 'partitions']);
    await admin.deleteTopics([spec.name]);
  });

  it('waits for a running batch handler before close resolves', async () => {
    const kafka = client(adapter);
    const { name } = await createTopic(kafka, 1);
    const producer = kafka.producer();
    harness.closers.push(() => producer.close());
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let handlerFinished = false;
    let handlerStarted = false;
    const consumer: Consumer = kafka.consumer({
      groupId: uniqueName('g'),
      topics: [name],
      fromBeginning: true,
    });
    await consumer.start({
      onBatch: async () => {
        handlerStarted = true;
        await released;
        handlerFinished = true;
      },
    });
    await producer.send([{ topic: name, key: 'k', value: 'v' }]);
    await waitFor('the handler to start', () => handlerStarted);
    const closing = consumer.close().then(() => handlerFinished);
    release();
    expect(await closing).toBe(true);
  });
});
