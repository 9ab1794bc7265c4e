/**
 * The open-loop benchmark. Prints figures and writes a chart; asserts nothing.
 *
 * The four services on one broker, their queued and direct routes pointing at nginx answering at once. Load at
 * fixed arrival rates (vegeta: each request is sent on schedule, answered or not, so queueing delay shows instead
 * of being hidden by clients that wait), for four modes: accept (POST /v1/requests, 202), wait (the same with
 * Prefer: wait, 200 with the result), transparent (POST /r/<queued route>/…, 202) and direct (GET on a
 * mode: direct route, 200). Each mode is swept from light load until past its saturation. Beside them, on the same
 * broker and upstream, the bare pipeline (`bare-pipeline.ts`) is swept with accept and wait: the limit of each
 * figure, measured in the same run. Then a sustained run of accept load is costed, for Sluice and for the bare
 * pipeline: CPU ms per completed request of each process and of the broker, and Kafka records and bytes per
 * request by topic.
 *
 *   pnpm --filter @sluice/e2e bench:open-loop
 *   BENCH_STEP_SECONDS=8 BENCH_SUSTAINED_RATE=400 BENCH_SUSTAINED_SECONDS=20 BENCH_CHART=path.svg
 *   BENCH_MODES=accept,wait,bare-wait (the modes swept; the sustained runs are accept's either way)
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { cacheDir, serviceNames } from '@sluice/testkit';
import * as vega from 'vega';
import * as vegaLite from 'vega-lite';
import { startBarePipeline } from './bare-pipeline.ts';
import { cpuMs, rssMb, topicUsage } from './costs.ts';
import { bareTargets, drain as drainQueue, loadTargets, startLoadStack } from './loads.ts';
import { describeStep, type OpenLoopStep, openLoop, pastSaturation } from './vegeta.ts';

const stepSeconds = Number(process.env.BENCH_STEP_SECONDS ?? 8);
const sustainedRate = Number(process.env.BENCH_SUSTAINED_RATE ?? 400);
const sustainedSeconds = Number(process.env.BENCH_SUSTAINED_SECONDS ?? 20);
const maxRate = Number(process.env.BENCH_MAX_RATE ?? 12_800);
/** The modes swept (all four unless told, e.g. BENCH_MODES=accept,wait); the sustained run is accept's. */
const sweptModes = (process.env.BENCH_MODES ?? 'accept,wait,transparent,direct,bare-accept,bare-wait').split(
  ',',
);
const chartPath = process.env.BENCH_CHART ?? join(cacheDir(), 'bench', 'open-loop.svg');

const { kafka, nginx, stack, stop } = await startLoadStack();
const bare = await startBarePipeline({ brokers: kafka.brokers, upstream: nginx.url, partitions: 6 });
const allModes = { ...loadTargets(stack.ingress), ...bareTargets(bare.url) };
const modes = Object.fromEntries(Object.entries(allModes).filter(([mode]) => sweptModes.includes(mode)));

/** Waits until what earlier steps queued is done (on the bare pipeline for its modes). */
const drain = (mode = 'accept') =>
  drainQueue((mode.startsWith('bare-') ? allModes['bare-accept'] : allModes.accept).target);

console.log(`machine: ${availableParallelism()} cores, Node ${process.version}; ${stepSeconds} s per step\n`);
const rssBefore = Object.fromEntries(
  await Promise.all(
    serviceNames.map(async (name) => [name, await rssMb(stack.services[name].pid as number)]),
  ),
);
// A warm-up of every mode (JIT, connection pools, consumer fetch sessions).
for (const { target, okStatus } of Object.values(modes))
  await openLoop(target, { rate: 50, seconds: 3, okStatus });
await drain();
await drain('bare-accept');

const sweeps: Record<string, OpenLoopStep[]> = {};
for (const [mode, { target, okStatus }] of Object.entries(modes)) {
  sweeps[mode] = [];
  console.log(`${mode}:`);
  for (let rate = 100; rate <= maxRate; rate *= 2) {
    const step = await openLoop(target, { rate, seconds: stepSeconds, okStatus });
    sweeps[mode].push(step);
    console.log(`  ${describeStep(step)}`);
    if (mode !== 'direct') await drain(mode);
    if (pastSaturation(step)) break;
  }
}

console.log(
  '\n| mode | offered/s | achieved/s | success | refused | timed out | p50 ms | p90 ms | p99 ms | p99.9 ms |',
);
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
const ms = (value: number | undefined) =>
  value === undefined || Number.isNaN(value) ? '–' : value.toFixed(1);
for (const [mode, steps] of Object.entries(sweeps)) {
  for (const step of steps) {
    console.log(
      `| ${mode} | ${step.offered} | ${step.achieved.toFixed(0)} | ${(step.success * 100).toFixed(1)}% | ${step.refused} | ${step.timedOut} | ${ms(step.p50)} | ${ms(step.p90)} | ${ms(step.p99)} | ${ms(step.p999)} |`,
    );
  }
}

// Each Sluice figure beside the bare pipeline's, from the same sweeps.
/** The highest offered rate a mode kept up with (the last step before past saturation). */
const sustainable = (steps: OpenLoopStep[] = []) =>
  steps.filter((step) => !pastSaturation(step)).at(-1)?.offered ?? Number.NaN;
const at = (steps: OpenLoopStep[] = [], rate: number) => steps.find((step) => step.offered === rate);
const ratio = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined ? '–' : (a / b).toFixed(2);
console.log('\n| figure | Sluice | bare pipeline | ratio |\n| --- | ---: | ---: | ---: |');
for (const mode of ['accept', 'wait'] as const) {
  const [ours, theirs] = [sweeps[mode], sweeps[`bare-${mode}`]];
  if (ours === undefined || theirs === undefined) continue;
  const rates = { ours: sustainable(ours), bare: sustainable(theirs) };
  console.log(
    `| ${mode}: sustainable rate, /s | ${rates.ours} | ${rates.bare} | ${ratio(rates.ours, rates.bare)} |`,
  );
  for (const quantile of ['p50', 'p99'] as const) {
    const [a, b] = [at(ours, 200)?.[quantile], at(theirs, 200)?.[quantile]];
    console.log(`| ${mode}: ${quantile} at 200/s, ms | ${ms(a)} | ${ms(b)} | ${ratio(a, b)} |`);
  }
  const [a, b] = [at(ours, rates.ours / 2)?.p99, at(theirs, rates.bare / 2)?.p99];
  console.log(`| ${mode}: p99 at half its sustainable rate, ms | ${ms(a)} | ${ms(b)} | ${ratio(a, b)} |`);
}

/**
 * The cost of a sustained run of accept load against `target`, measured from its start until every accepted
 * request is done: CPU ms per completed request of each process in `pids`, and Kafka records and bytes per
 * request by topic of `prefix`.
 */
async function costOf(
  name: string,
  mode: 'accept' | 'bare-accept',
  prefix: string,
  pids: Record<string, number>,
) {
  const admin = stack.kafka.admin();
  const dataDirs = brokers.map((broker) => join(broker.dataDir, 'logs'));
  const reading = async () => ({
    cpu: Object.fromEntries(
      await Promise.all(Object.entries(pids).map(async ([n, pid]) => [n, await cpuMs(pid)] as const)),
    ),
    usage: await topicUsage(admin, prefix, dataDirs),
  });
  const before = await reading();
  const sustained = await openLoop(allModes[mode].target, {
    rate: sustainedRate,
    seconds: sustainedSeconds,
    okStatus: 202,
  });
  await drain(mode);
  const completed = sustained.achieved * sustainedSeconds + 1;
  const after = await reading();
  await admin.close();
  console.log(
    `\n${name}, sustained accept load: ${describeStep(sustained)}; ${completed.toFixed(0)} requests completed`,
  );
  console.log('| process | CPU ms per completed request |\n| --- | ---: |');
  let servicesTotal = 0;
  for (const process of Object.keys(pids)) {
    const perRequest = ((after.cpu[process] as number) - (before.cpu[process] as number)) / completed;
    if (process !== 'broker') servicesTotal += perRequest;
    console.log(`| ${process} | ${perRequest.toFixed(3)} |`);
  }
  console.log(`| ${name}'s processes together (broker apart) | ${servicesTotal.toFixed(3)} |`);
  console.log('\n| topic | records per request | bytes per request |\n| --- | ---: | ---: |');
  for (const usage of after.usage) {
    const earlier = before.usage.find((entry) => entry.topic === usage.topic);
    const records = (usage.records - (earlier?.records ?? 0)) / completed;
    const bytes = (usage.bytes - (earlier?.bytes ?? 0)) / completed;
    if (records > 0) console.log(`| ${usage.topic} | ${records.toFixed(2)} | ${bytes.toFixed(0)} |`);
  }
  return servicesTotal;
}
const brokers = kafka.processes?.() ?? [];
const brokerPid = { broker: brokers[0]?.pid as number };
const ourCost = await costOf('Sluice', 'accept', stack.prefix, {
  ...Object.fromEntries(serviceNames.map((name) => [name, stack.services[name].pid as number])),
  ...brokerPid,
});
const bareCost = await costOf('the bare pipeline', 'bare-accept', bare.prefix, {
  ...bare.pids,
  ...brokerPid,
});
console.log(`\nCPU per completed request, Sluice ÷ bare pipeline: ${ratio(ourCost, bareCost)}`);
const rssAfter = Object.fromEntries(
  await Promise.all(
    serviceNames.map(async (name) => [name, await rssMb(stack.services[name].pid as number)]),
  ),
);
console.log(
  `\nRSS from start to end of the benchmark: ${serviceNames.map((name) => `${name} ${(rssBefore[name] as number).toFixed(0)} → ${(rssAfter[name] as number).toFixed(0)} MB`).join(', ')}`,
);

// Latency against offered rate, one line per mode (p99 solid, p50 dashed), log scales.
const rows = Object.entries(sweeps)
  .flatMap(([mode, steps]) =>
    steps.flatMap((step) => [
      { mode, offered: step.offered, quantile: 'p99', ms: step.p99 },
      { mode, offered: step.offered, quantile: 'p50', ms: step.p50 },
    ]),
  )
  .filter((row) => !Number.isNaN(row.ms));
const spec = vegaLite.compile({
  $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
  title: `Sluice, open loop: latency against offered rate (${availableParallelism()} cores, one broker)`,
  width: 640,
  height: 360,
  data: { values: rows },
  mark: { type: 'line', point: true },
  encoding: {
    x: { field: 'offered', type: 'quantitative', scale: { type: 'log' }, title: 'offered requests/s' },
    y: { field: 'ms', type: 'quantitative', scale: { type: 'log' }, title: 'latency, ms' },
    color: { field: 'mode', type: 'nominal' },
    strokeDash: { field: 'quantile', type: 'nominal', legend: { symbolType: 'stroke' } },
  },
}).spec;
const svg = await new vega.View(vega.parse(spec), { renderer: 'none' }).toSVG();
await mkdir(dirname(chartPath), { recursive: true });
await writeFile(chartPath, svg);
console.log(`\nchart: ${chartPath}`);

await bare.stop();
await stop();
process.exit(0);
