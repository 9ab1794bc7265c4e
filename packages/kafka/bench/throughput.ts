/**
 * Produce and consume throughput of both Kafka adapters on the same broker in the same run.
 * Prints figures; asserts nothing. Rounds alternate between adapters so that machine noise hits both alike.
 *
 *   pnpm bench                     (starts a broker unless KAFKA_BROKERS is set)
 *   BENCH_RECORDS=100000 BENCH_ROUNDS=5 pnpm bench
 */
import { cpus } from 'node:os';
import { startKafka, uniqueName } from '@sluice/testkit';
import { producerDefaults } from '../src/adapters/defaults.ts';
import { createKafkaClient, type KafkaAdapterName, type KafkaClient, kafkaAdapters } from '../src/index.ts';

const records = Number(process.env.BENCH_RECORDS ?? 40_000);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const valueBytes = Number(process.env.BENCH_VALUE_BYTES ?? 512);
/** Concurrent callers of send(), one record each: the shape of an HTTP ingress under load. */
const callers = Number(process.env.BENCH_CALLERS ?? 256);
const partitions = 6;

interface Round {
  adapter: KafkaAdapterName;
  produceMs: number;
  consumeMs: number;
}

async function produceRound(kafka: KafkaClient, topic: string): Promise<number> {
  const producer = kafka.producer();
  await producer.connect();
  const value = Buffer.alloc(valueBytes, 'x');
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (next < records) {
        const index = next++;
        await producer.send([{ topic, key: `key-${index % 1000}`, value }]);
      }
    }),
  );
  const elapsed = performance.now() - started;
  await producer.close();
  return elapsed;
}

async function consumeRound(kafka: KafkaClient, topic: string): Promise<number> {
  let seen = 0;
  let done: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    done = resolve;
  });
  const consumer = kafka.consumer({
    groupId: uniqueName('bench'),
    topics: [topic],
    fromBeginning: true,
    partitionConcurrency: partitions,
    maxBatchRecords: 1_000,
  });
  // Timed from the first record handed over, so that the group join (seconds, and equal for both) is left out.
  let started = 0;
  await consumer.start({
    onBatch: async (batch) => {
      if (started === 0) started = performance.now();
      seen += batch.records.length;
      const last = batch.records[batch.records.length - 1];
      if (last !== undefined) await consumer.commit([{ ...batch, offset: last.offset + 1n }]);
      if (seen >= records) done();
    },
  });
  await finished;
  const elapsed = performance.now() - started;
  await consumer.close();
  return elapsed;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

async function main(): Promise<void> {
  const broker = await startKafka();
  const results: Round[] = [];
  try {
    const brokers = broker.bootstrap.split(',');
    for (let round = 0; round < rounds; round += 1) {
      for (const adapter of round % 2 === 0 ? kafkaAdapters : [...kafkaAdapters].reverse()) {
        const kafka = createKafkaClient(adapter, { brokers, clientId: uniqueName(`bench-${adapter}`) });
        const admin = kafka.admin();
        const topic = uniqueName(`bench-${adapter}`);
        await admin.createTopics([{ name: topic, partitions, replicationFactor: 1, config: {} }]);
        const produceMs = await produceRound(kafka, topic);
        const consumeMs = await consumeRound(kafka, topic);
        await admin.deleteTopics([topic]);
        await admin.close();
        results.push({ adapter, produceMs, consumeMs });
        process.stderr.write(
          `round ${round + 1} ${adapter}: produce ${produceMs.toFixed(0)} ms, consume ${consumeMs.toFixed(0)} ms\n`,
        );
      }
    }
  } finally {
    await broker.stop();
  }
  const perSecond = (ms: number) => (records / ms) * 1000;
  const mbPerSecond = (ms: number) => (perSecond(ms) * valueBytes) / 1024 / 1024;
  console.log('\n## Kafka adapter throughput');
  console.log(
    `broker: ${broker.source} (Kafka single node, loopback); cores: ${cpus().length}; node ${process.version}; ` +
      `${records} records of ${valueBytes} B per round, ${rounds} rounds per adapter (median shown); ` +
      `produce: ${callers} concurrent callers of send() with one record each, acks=all, idempotent, ` +
      `linger ${producerDefaults.lingerMs} ms, max ${producerDefaults.maxBatchRecords} records per request; ` +
      `consume: one group member, ${partitions} partitions, commit after every batch, timed from the first record`,
  );
  console.log('\n| adapter | produce records/s | produce MB/s | consume records/s | consume MB/s |');
  console.log('|---|---:|---:|---:|---:|');
  const medians = new Map<KafkaAdapterName, { produce: number; consume: number }>();
  for (const adapter of kafkaAdapters) {
    const mine = results.filter((r) => r.adapter === adapter);
    const produce = median(mine.map((r) => r.produceMs));
    const consume = median(mine.map((r) => r.consumeMs));
    medians.set(adapter, { produce, consume });
    console.log(
      `| ${adapter} | ${perSecond(produce).toFixed(0)} | ${mbPerSecond(produce).toFixed(1)} | ${perSecond(consume).toFixed(0)} | ${mbPerSecond(consume).toFixed(1)} |`,
    );
  }
  const p = medians.get('platformatic');
  const k = medians.get('kafkajs');
  if (p && k) {
    console.log(
      `\nplatformatic / kafkajs: produce ${(k.produce / p.produce).toFixed(2)}x, consume ${(k.consume / p.consume).toFixed(2)}x`,
    );
  }
}

await main();
