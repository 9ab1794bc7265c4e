import { randomUUID } from 'node:crypto';
import { waitFor } from '@sluice/testkit';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  audit,
  committedOffsets,
  describeAudit,
  type Expected,
  metricSum,
  uncommittedWindow,
} from '../src/audit.ts';
import { api } from '../src/harness.ts';
import { stackPerFile } from '../src/stack-per-file.ts';
import { callsTo, ScriptedUpstream } from '../src/upstream.ts';

/**
 * Services dying without a chance to clean up (SIGKILL) in the middle of a load, then started again. Small
 * in-flight bounds keep the window of work a crash can repeat small and computable, and pace the load so that the
 * kill lands in its middle.
 */
const workerInFlight = 16;
const deliveryInFlight = 8;
const upstream = new ScriptedUpstream();
const stack = stackPerFile(
  () => ({
    upstream: upstream.handler,
    env: {
      KAFKA_TOPIC_PARTITIONS: '6',
      WORKER_MAX_IN_FLIGHT: String(workerInFlight),
      DELIVERY_MAX_IN_FLIGHT: String(deliveryInFlight),
    },
    routes: {
      // As e2e, with room for a call held while a worker restarts.
      'e2e-patient': (url) => `    upstream:
      targets: [{ url: "${url}/up" }]
      circuitBreaker: { failureThreshold: 100000 }
      outlierDetection: { consecutiveFailures: 100000 }
    timeoutMs: 60000`,
    },
  }),
  240_000,
);
beforeAll(async () => {
  await stack().spawn('batch-worker');
}, 120_000);

const token = () => randomUUID().slice(0, 8);
const succeededOnce: Expected = { status: 'succeeded', attempts: 1, httpStatus: 200 };

async function submitBatch(
  paths: string[],
  callbackPath: string,
  route = 'e2e',
): Promise<{ batchId: string; ids: string[] }> {
  const response = await api(stack(), '/v1/batches', {
    json: {
      requests: paths.map((path) => ({ route, method: 'GET', path })),
      callback: { url: `${stack().receiver.url}${callbackPath}` },
    },
  });
  expect(response.status).toBe(202);
  return (await response.json()) as { batchId: string; ids: string[] };
}

describe('a batch-worker killed in the middle of a batch, with a second one running', () => {
  it('the survivor takes its partitions, repeats only what the dead one left uncommitted, and the restarted one rejoins a busy group', async () => {
    // 600 calls of 150 ms, 16 at a time per worker: about 3 s of work for two workers.
    const run = token();
    // Every 50th is held by the upstream until after the kill: the kill always falls in the middle of the batch.
    // e2e-patient: a held call must not reach the route's timeout, however long the machine takes to get there.
    const first = await submitBatch(
      Array.from({ length: 600 }, (_, i) =>
        i % 50 === 49 ? `/hold/${run}-late/${i}` : `/slow/${run}-${i}/150`,
      ),
      `/hooks/${run}`,
      'e2e-patient',
    );
    const called = (prefix: string) => callsTo(stack().upstream.calls, prefix).length;
    await waitFor('the batch to be under way', () => called(`/up/slow/${run}-`) >= 100, { intervalMs: 10 });
    const exit = await stack().kill('batch-worker', 'SIGKILL', 1);
    const killedAt = Date.now();
    // Nothing commits the dead member's partitions until the group hands them over (its session times out).
    const committed = await committedOffsets(stack(), 'batchWorker', ['requests']);
    const calledAtKill = called(`/up/slow/${run}-`);
    expect(exit.signal).toBe('SIGKILL');
    upstream.release(`${run}-late`);
    const window = await uncommittedWindow(stack(), ['requests'], committed, killedAt);
    const crash = await audit(stack(), {
      requests: new Map(first.ids.map((id) => [id, succeededOnce])),
      batchCallbacks: new Map([[first.batchId, { path: `/hooks/${run}`, ids: first.ids }]]),
      maxDuplicateCalls: window.size,
      duplicateWindow: window,
    });
    console.log(
      `${describeAudit('batch-worker SIGKILL', crash)}; ${calledAtKill} of the 588 unheld calls made at the kill, ` +
        `${window.size} in the dead worker's uncommitted window`,
    );
    expect(crash.problems).toEqual([]);
    // Every repeated call is a second result the aggregator ignored (it was never restarted here).
    expect(crash.aggregatorDuplicateResults).toBeLessThanOrEqual(crash.duplicateCalls);

    // The killed worker starts again while the survivor is busy: 16 calls held by a slow upstream, the rest of a
    // batch of 400 waiting behind them. The group moves half of the partitions from the survivor to it.
    const run2 = token();
    const second = await submitBatch(
      Array.from({ length: 400 }, () => `/hold/${run2}`),
      `/hooks/${run2}`,
      'e2e-patient',
    );
    const held = () => called(`/up/hold/${run2}`);
    await waitFor('the survivor to hold its in-flight bound', () => held() >= workerInFlight, {
      intervalMs: 10,
    });
    const revivedAt = Date.now();
    const revived = await stack().revive('batch-worker', 1);
    const rejoinedMs = Date.now() - revivedAt;
    await waitFor('the restarted worker to take its share', () => held() >= 2 * workerInFlight, {
      timeoutMs: 60_000,
    });
    upstream.release(run2);
    const handover = await audit(stack(), {
      requests: new Map(second.ids.map((id) => [id, succeededOnce])),
      batchCallbacks: new Map([[second.batchId, { path: `/hooks/${run2}`, ids: second.ids }]]),
      // A handover repeats at most what the survivor had in flight on the partitions it gave up: its in-flight
      // bound (nothing finished behind the held calls, so nothing finished was left uncommitted).
      maxDuplicateCalls: workerInFlight,
    });
    const revivedTries = await metricSum(revived, 'http_client_request_duration_count');
    console.log(
      `${describeAudit('batch-worker restarted', handover)}; the restarted worker was ready after ${rejoinedMs} ms ` +
        `and made ${revivedTries} of the calls`,
    );
    expect(handover.problems).toEqual([]);
    expect(revivedTries).toBeGreaterThan(0);
  });
});

describe('the aggregator, then delivery, killed in the middle of a load and started again', () => {
  it('every request still ends once, and lookups, the result topic and the webhooks agree', async () => {
    // 300 requests, each with its own callback: 300 calls of 400 ms (80/s with two workers of 16), and webhooks
    // answered after 200 ms, 8 at a time (40/s): delivery is still busy when the aggregator dies.
    stack().receiver.respond((_call, res) => {
      setTimeout(() => {
        res.writeHead(204);
        res.end();
      }, 200);
    });
    const run = token();
    const hooks = `/hooks/${run}`;
    const ids: string[] = [];
    await Promise.all(
      Array.from({ length: 8 }, async (_, lane) => {
        for (let i = lane; i < 300; i += 8) {
          // Every 50th is held until after both kills: they always fall in the middle of the load. On
          // e2e-patient, so that a held call never reaches the route's timeout, however slow the machine.
          const held = i % 50 === 49;
          const response = await api(stack(), '/v1/requests', {
            json: {
              route: held ? 'e2e-patient' : 'e2e',
              method: 'GET',
              path: held ? `/hold/${run}-late/${i}` : `/slow/${run}-${i}/400`,
              callback: { url: `${stack().receiver.url}${hooks}` },
            },
          });
          expect(response.status).toBe(202);
          ids.push(((await response.json()) as { id: string }).id);
        }
      }),
    );
    const delivered = () => stack().receiver.calls.filter((call) => call.path === hooks).length;
    await waitFor('webhooks to flow', () => delivered() >= 40, { timeoutMs: 60_000, intervalMs: 10 });
    await stack().kill('aggregator');
    const killedAt = Date.now();
    const calledAtKill = callsTo(stack().upstream.calls, `/up/slow/${run}-`).length;
    // The new aggregator is ready once the group hands it the partitions, after the dead one's session ends.
    const aggregatorBack = stack().revive('aggregator');
    const deliveredAtKill = delivered();
    await stack().kill('delivery');
    const deliveryBack = stack().revive('delivery');
    upstream.release(`${run}-late`);
    await Promise.all([aggregatorBack, deliveryBack]);
    const backAfterMs = Date.now() - killedAt;
    const report = await audit(stack(), {
      requests: new Map(ids.map((id) => [id, succeededOnce])),
      requestCallbacks: new Map(ids.map((id) => [id, hooks])),
      // No batch-worker died: every request was called exactly as often as its status says.
      maxDuplicateCalls: 0,
    });
    console.log(
      `${describeAudit('aggregator and delivery SIGKILL', report)}; ${calledAtKill} of the 294 unheld calls made and ` +
        `${deliveredAtKill} webhooks delivered at the kills; both ready again after ${backAfterMs} ms`,
    );
    expect(report.problems).toEqual([]);
    expect(report.aggregatorDuplicateResults).toBe(0);
  });
});
