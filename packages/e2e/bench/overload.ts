/**
 * Overload: what clients see when offered twice what the stack can take. Prints figures; asserts nothing.
 *
 * The four services on one broker with the gateway file's default backpressure (unlike the other benchmarks and the
 * tests, which raise `maxAcceptWaitMs` out of the way of a busy machine). For each mode (accept, `Prefer: wait`),
 * its sustainable rate is found first (open loop from 100/s doubling, as the open-loop benchmark does: the last step
 * with at least 90% of the offered rate answered as expected, 95% success and a p99 under 5 s), then twice that rate
 * is offered for a longer step. What should happen: the requests accepted keep their latency (p99 ≤ 1 s), the rest
 * are refused at once with 429/503 and Retry-After, and no client waits until its own time-out.
 *
 * Every service shares two cores here; deployed, each has its own CPU. With BENCH_OVERLOAD_NICE=10 the
 * batch-worker, aggregator and delivery run at that nice value, so that the ingress (and the broker) get the CPU
 * they need first, as they would with their own: what the ingress then does past its capacity is what is measured,
 * not how the workers draining the queue starve it.
 *
 *   pnpm --filter @sluice/e2e bench:overload
 *   BENCH_STEP_SECONDS=6 BENCH_OVERLOAD_SECONDS=20 BENCH_OVERLOAD_MODES=accept,wait BENCH_OVERLOAD_NICE=10
 */
import { execFileSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { drain as drainQueue, loadTargets, startLoadStack } from './loads.ts';
import { describeStep, openLoop, pastSaturation } from './vegeta.ts';

const stepSeconds = Number(process.env.BENCH_STEP_SECONDS ?? 6);
const overloadSeconds = Number(process.env.BENCH_OVERLOAD_SECONDS ?? 20);
const modes = (process.env.BENCH_OVERLOAD_MODES ?? 'accept,wait').split(',') as ('accept' | 'wait')[];
const niceWorkers = process.env.BENCH_OVERLOAD_NICE;

// The shipped defaults: a backpressure line of the file's own keeps the harness from raising the bounds.
const { stack, stop } = await startLoadStack({}, 'backpressure: {}\n');
const targets = loadTargets(stack.ingress);
if (niceWorkers !== undefined) {
  for (const name of ['batch-worker', 'aggregator', 'delivery'] as const) {
    const pid = stack.services[name].pid;
    if (pid !== undefined)
      execFileSync('renice', ['-n', niceWorkers, '-p', String(pid)], { stdio: 'ignore' });
  }
}

const drain = () => drainQueue(targets.accept.target);
console.log(
  `machine: ${availableParallelism()} cores, Node ${process.version}; the shipped backpressure defaults; workers at nice ${niceWorkers ?? 0}\n`,
);
await openLoop(targets.accept.target, { rate: 50, seconds: 3, okStatus: 202 });
await drain();

const rows: string[] = [];
const ms = (value: number) => (Number.isNaN(value) ? '–' : value.toFixed(0));
for (const mode of modes) {
  const { target, okStatus } = targets[mode];
  let sustainable = 0;
  console.log(`${mode}:`);
  for (let rate = 100; rate <= 12_800; rate *= 2) {
    const step = await openLoop(target, { rate, seconds: stepSeconds, okStatus });
    console.log(`  ${describeStep(step)}`);
    await drain();
    if (pastSaturation(step)) break;
    sustainable = rate;
  }
  if (sustainable === 0) {
    rows.push(`| ${mode} | below 100 | – | – | – | – | – | – |`);
    continue;
  }
  const offered = 2 * sustainable;
  const step = await openLoop(target, {
    rate: offered,
    seconds: overloadSeconds,
    okStatus,
    timeoutSeconds: 15,
  });
  console.log(`  2× sustainable: ${describeStep(step)}`);
  await drain();
  const total = Object.values(step.codes).reduce((a, b) => a + b, 0);
  const share = (count: number) => `${((count / Math.max(1, total)) * 100).toFixed(1)}%`;
  rows.push(
    `| ${mode} | ${sustainable} | ${offered} | ${step.achieved.toFixed(0)} | ${ms(step.p50)} / ${ms(step.p99)} | ${share(step.refused)} (${step.refusedWithRetryAfter} with Retry-After), p99 ${ms(step.refusedP99)} ms | ${share(step.timedOut)} | ${JSON.stringify(step.codes)} |`,
  );
}
console.log(
  '\n| mode | sustainable/s | offered/s | answered as expected/s | their p50 / p99 ms | refused | client time-outs (15 s) | status codes |',
);
console.log('| --- | ---: | ---: | ---: | ---: | --- | ---: | --- |');
for (const row of rows) console.log(row);
await stop();
process.exit(0);
