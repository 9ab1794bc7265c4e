/**
 * Where the time of a `Prefer: wait` request goes, at a low fixed rate. Prints figures; asserts nothing.
 *
 * The four services on one broker, a queued route to nginx answering at once. Requests are sent on a fixed
 * schedule (open loop: each at its time, answered or not) with `Prefer: wait`, and each answer's timings split
 * its life into hops: client → accepted by the ingress (acceptedAt), → the batch-worker starts the upstream call
 * (startedAt), → the upstream answered (finishedAt), → the client has the answer (results to the aggregator, the
 * terminal status to the ingress's status feed, the held connection answered). Percentiles per hop, then the
 * slowest requests hop by hop.
 *
 *   pnpm --filter @sluice/e2e bench:wait-hops
 *   BENCH_WAIT_RATE=25 BENCH_WAIT_SECONDS=40
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { statusHistory } from '../src/harness.ts';
import { loadTargets, startLoadStack } from './loads.ts';

const rate = Number(process.env.BENCH_WAIT_RATE ?? 25);
const seconds = Number(process.env.BENCH_WAIT_SECONDS ?? 40);

const { stack, stop } = await startLoadStack();
const { target } = loadTargets(stack.ingress).wait;

interface Timeline {
  id: string;
  sent: number;
  accepted: number;
  started: number;
  finished: number;
  /** When the aggregator wrote the terminal status (read from the status topic afterwards). */
  concluded?: number;
  answered: number;
}

async function send(): Promise<Timeline | undefined> {
  const sent = Date.now();
  const response = await fetch(target.url, {
    method: 'POST',
    headers: target.headers,
    body: target.body ?? null,
  });
  const document = (await response.json()) as {
    id: string;
    status: string;
    timings?: { acceptedAt: string; startedAt?: string; finishedAt?: string };
  };
  const answered = Date.now();
  const timings = document.timings;
  if (response.status !== 200 || timings?.startedAt === undefined || timings.finishedAt === undefined) {
    return undefined;
  }
  return {
    id: document.id,
    sent,
    accepted: Date.parse(timings.acceptedAt),
    started: Date.parse(timings.startedAt),
    finished: Date.parse(timings.finishedAt),
    answered,
  };
}

// Warm-up: code paths, connection pools, consumer fetch sessions.
for (let i = 0; i < 50; i += 1) await send();

const pending: Promise<Timeline | undefined>[] = [];
const startAt = performance.now();
const count = rate * seconds;
for (let i = 0; i < count; i += 1) {
  const due = startAt + (i * 1_000) / rate;
  const wait = due - performance.now();
  if (wait > 0) await sleep(wait);
  pending.push(send());
}
const timelines = (await Promise.all(pending)).filter((t): t is Timeline => t !== undefined);
const history = await statusHistory(stack);
for (const timeline of timelines) {
  timeline.concluded = history.get(timeline.id)?.find((s) => s.status === 'succeeded')?.updatedAt;
}
const steady = timelines.filter((t) => t.sent - (timelines[0]?.sent ?? 0) >= 2_000);

const hops: [string, (t: Timeline) => number][] = [
  ['total', (t) => t.answered - t.sent],
  ['client → accepted', (t) => t.accepted - t.sent],
  ['accepted → upstream call', (t) => t.started - t.accepted],
  ['upstream call', (t) => t.finished - t.started],
  [
    'upstream answered → terminal status written (worker → results → aggregator)',
    (t) => (t.concluded ?? Number.NaN) - t.finished,
  ],
  [
    'terminal status written → client answered (status feed → held answer)',
    (t) => t.answered - (t.concluded ?? Number.NaN),
  ],
];
const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
};
console.log(
  `Prefer: wait at ${rate}/s for ${seconds} s: ${timelines.length} of ${count} answered 200 with timings (ms)\n`,
);
const table = (title: string, rows: Timeline[]) => {
  console.log(`${title}\n| hop | p50 | p90 | p99 | max |\n| --- | ---: | ---: | ---: | ---: |`);
  for (const [name, of] of hops) {
    const values = rows.map(of);
    console.log(`| ${name} | ${[50, 90, 99, 100].map((p) => percentile(values, p)).join(' | ')} |`);
  }
};
table('all requests', timelines);
table('\nfrom 2 s on (without the first seconds after the warm-up)', steady);
console.log('\nthe slowest 1%, hop by hop (ms):');
const slowest = [...timelines].sort((a, b) => b.answered - b.sent - (a.answered - a.sent));
for (const t of slowest.slice(0, Math.max(5, Math.ceil(timelines.length / 100)))) {
  console.log(
    `  ${hops.map(([name, of]) => `${name} ${of(t)}`).join(', ')} (sent at +${(t.sent - (timelines[0]?.sent ?? 0)).toFixed(0)} ms)`,
  );
}

await stop();
