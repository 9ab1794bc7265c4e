/**
 * `pnpm run profile <service>` (`pnpm profile` itself is npm's command, which pnpm passes through): the four services under load, one of them under V8's CPU profiler; writes its
 * profile, collapsed stacks and an SVG flame graph, and prints its busiest functions.
 *
 *   pnpm run profile ingress                      accept load (POST /v1/requests), 400/s for 20 s
 *   pnpm run profile batch-worker --rate 800 --seconds 30
 *   pnpm run profile ingress --load direct --rate 3000
 *   pnpm run profile aggregator --load wait           Prefer: wait clients
 *
 * Output in .cache/profiles/<service>-<load>-<time>/ unless --out is given. Starts a broker unless KAFKA_BROKERS
 * is set. Needs cargo once (inferno, for the SVG) and Go once (vegeta, for the load).
 */
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { cacheDir, echo, type ServiceName, serviceNames, startKafka } from '@sluice/testkit';
import { startStack } from '../src/harness.ts';
import { collapse, renderFlameGraph } from './flame.ts';
import { benchRoutes, type LoadMode, loadModes, loadTargets } from './loads.ts';
import { answeringNginx } from './nginx.ts';
import { describeStep, openLoop } from './vegeta.ts';

const usage = `usage: pnpm run profile <service> [--load accept|wait|transparent|direct] [--rate N] [--seconds N] [--out dir]

Runs ingress, batch-worker, aggregator and delivery on a broker, sends open-loop load (vegeta) at --rate
requests per second for --seconds, and profiles <service> (${serviceNames.join(', ')}) with node --cpu-prof.
Writes <out>/<service>.cpuprofile, stacks.folded and flame.svg, and prints the busiest functions.

  --load      accept: POST /v1/requests answered 202 (default)
              wait:   the same with Prefer: wait=10, answered 200 with the result
              transparent: POST /r/<queued route>/…, answered 202
              direct: GET on a mode: direct route, proxied by the ingress
  --rate      requests per second (default 400)
  --seconds   length of the load (default 20)
  --out       output directory (default .cache/profiles/<service>-<load>-<time>)`;

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    load: { type: 'string', default: 'accept' },
    rate: { type: 'string', default: '400' },
    seconds: { type: 'string', default: '20' },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
const service = positionals[0] as ServiceName | undefined;
const load = values.load as LoadMode;
const rate = Number(values.rate);
const seconds = Number(values.seconds);
if (values.help) {
  console.log(usage);
  process.exit(0);
}
if (
  service === undefined ||
  !serviceNames.includes(service) ||
  !loadModes.includes(load) ||
  !(rate > 0) ||
  !(seconds > 0)
) {
  console.error(usage);
  process.exit(2);
}

const out =
  values.out ??
  join(cacheDir(), 'profiles', `${service}-${load}-${new Date().toISOString().replaceAll(':', '')}`);
await mkdir(out, { recursive: true });
const nginx = await answeringNginx();
const kafka = process.env.KAFKA_BROKERS ? undefined : await startKafka();
const stack = await startStack({
  brokers: process.env.KAFKA_BROKERS ?? (kafka?.bootstrap as string),
  upstream: echo,
  env: { KAFKA_TOPIC_PARTITIONS: '6' },
  routes: benchRoutes(nginx.url),
  nodeArgs: { [service]: ['--cpu-prof', `--cpu-prof-dir=${out}`, `--cpu-prof-name=${service}.cpuprofile`] },
});
const { target, okStatus } = loadTargets(stack.ingress)[load];
console.log(`profiling ${service} under ${load} load, ${rate}/s for ${seconds} s`);
const step = await openLoop(target, { rate, seconds, okStatus });
console.log(describeStep(step));
await stack.stop();
await Promise.all([kafka?.stop(), nginx.stop()]);

const profile = (await readdir(out)).find((name) => name.endsWith('.cpuprofile'));
if (profile === undefined) throw new Error(`${service} wrote no CPU profile into ${out}`);
const { folded, top, busyMs } = await collapse(join(out, profile));
await writeFile(join(out, 'stacks.folded'), folded);
await renderFlameGraph(
  folded,
  join(out, 'flame.svg'),
  `${service}, ${load} load at ${rate}/s for ${seconds} s`,
);
const perRequest = step.achieved > 0 ? busyMs / (step.achieved * seconds) : Number.NaN;
console.log(
  `\n${service}: ${busyMs.toFixed(0)} ms of CPU on its main thread (${perRequest.toFixed(3)} ms per answered request, start-up included); own time of its busiest functions:`,
);
for (const line of top) console.log(line);
console.log(`\nwrote ${join(out, profile)}, ${join(out, 'stacks.folded')} and ${join(out, 'flame.svg')}`);
process.exit(0);
