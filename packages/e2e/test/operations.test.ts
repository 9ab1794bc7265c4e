import { randomUUID } from 'node:crypto';
import { recordHeaders, tenantResultTopicName } from '@sluice/contracts';
import { waitFor } from '@sluice/testkit';
import { describe, expect, it } from 'vitest';
import {
  adminKey,
  api,
  readTopic,
  statusHistory,
  statusOf,
  tenantKeys,
  terminalStatusOf,
} from '../src/harness.ts';
import { stackPerFile } from '../src/stack-per-file.ts';
import { callsTo, ScriptedUpstream } from '../src/upstream.ts';

const upstream = new ScriptedUpstream();
const stack = stackPerFile(() => ({
  upstream: upstream.handler,
  env: { QUEUE_STATS_INTERVAL_MS: '200' },
  gatewayYaml:
    'backpressure: { shedLag: 30, rejectLag: 60, maxAcceptWaitMs: 60000, maxEventLoopDelayMs: 60000, maxSubmissionsInFlight: 1000000, maxQueueWaitMs: 3600000 }\n',
}));

const token = () => randomUUID().slice(0, 8);
const submit = (path: string, key = tenantKeys.acme, extra: Record<string, unknown> = {}) =>
  api(stack(), '/v1/requests', { key, json: { route: 'e2e', method: 'POST', path, ...extra } });

describe('a redrive', () => {
  it('sends a dead request again once the upstream is fixed: same id, then succeeded, delivered again', async () => {
    // The route allows 4 tries: 4 × 503 kill it; the 5th call, after the redrive, succeeds.
    const path = `/fail/${token()}/4`;
    const accepted = await submit(path, tenantKeys.acme, {
      callback: { url: `${stack().receiver.url}/hooks/redrive` },
    });
    const { id } = (await accepted.json()) as { id: string };
    expect(await terminalStatusOf(stack(), id)).toMatchObject({ status: 'dead', attempts: 4 });
    await waitFor('the dead letter', async () =>
      (await readTopic(stack().kafka, stack().topic('deadLetters'))).some(
        (r) => r.headers[recordHeaders.requestId] === id,
      ),
    );

    const redrive = await api(stack(), `/v1/requests/${id}/redrive`, { key: adminKey, method: 'POST' });
    expect(redrive.status).toBe(202);
    expect(await redrive.json()).toMatchObject({ id, generation: 1, batchId: `${id}.r1` });

    const done = await waitFor('the redriven request to succeed', async () => {
      const status = await statusOf(stack(), id, 5);
      return status.status === 'succeeded' && status;
    });
    expect(done).toMatchObject({
      id,
      batchId: `${id}.r1`,
      attempts: 1,
      redrives: 1,
      result: { status: 200 },
    });
    expect(callsTo(stack().upstream.calls, `/up${path}`)).toHaveLength(5);

    // History: one terminal status per generation, the later generation last.
    const statuses = (await statusHistory(stack())).get(id) ?? [];
    const terminal = statuses.filter((s) => ['succeeded', 'failed', 'expired', 'dead'].includes(s.status));
    expect(terminal.map((s) => `${s.generation ?? 0}:${s.status}`)).toEqual(['0:dead', '1:succeeded']);
    expect(statuses.at(-1)?.status).toBe('succeeded');
    // The client hears of both endings, in order, on its webhook and on its result topic.
    const hooks = await waitFor('both webhooks', () => {
      const calls = stack().receiver.calls.filter((c) => c.path === '/hooks/redrive');
      return calls.length >= 2 && calls;
    });
    expect(
      hooks.map((c) => (JSON.parse(c.body.toString()) as { data: { status: string } }).data.status),
    ).toEqual(['dead', 'succeeded']);
    const results = await waitFor('both results on the result topic', async () => {
      const records = (await readTopic(stack().kafka, tenantResultTopicName('acme', stack().prefix))).filter(
        (r) => r.headers.ce_subject === id || r.headers[recordHeaders.requestId] === id,
      );
      return records.length >= 2 && records;
    });
    expect(results).toHaveLength(2);
  });
});

describe('backpressure', () => {
  it('sheds the heavy tenant, then everyone, while the workers are away, and accepts again once they drain the queue', async () => {
    await stack().stopService('batch-worker');
    const accepted: string[] = [];
    const accept = async (response: Response) => {
      expect(response.status).toBe(202);
      accepted.push(((await response.json()) as { id: string }).id);
    };
    await accept(await submit(`/ok/${token()}`, tenantKeys.globex));

    // Once the queue holds more than shedLag (30), acme (almost all the traffic) is shed; globex is not.
    const shed = await waitFor('acme to be shed', async () => {
      const response = await submit(`/ok/${token()}`);
      if (response.status === 202) {
        accepted.push(((await response.json()) as { id: string }).id);
        return false;
      }
      return response;
    });
    expect(shed.status).toBe(429);
    expect(accepted.length).toBeGreaterThanOrEqual(30);
    expect(Number(shed.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await shed.json()).toMatchObject({ type: 'urn:sluice:problem:load-shed' });
    await accept(await submit(`/ok/${token()}`, tenantKeys.globex));

    // A batch takes the queue past rejectLag (60): then every submission is refused with 503.
    const batch = await api(stack(), '/v1/batches', {
      key: tenantKeys.globex,
      json: {
        requests: Array.from({ length: 30 }, () => ({ route: 'e2e', method: 'GET', path: `/ok/${token()}` })),
      },
    });
    expect(batch.status).toBe(202);
    accepted.push(...((await batch.json()) as { ids: string[] }).ids);
    const rejected = await waitFor('every tenant to be refused', async () => {
      const response = await submit(`/ok/${token()}`, tenantKeys.globex);
      if (response.status === 202) {
        accepted.push(((await response.json()) as { id: string }).id);
        return false;
      }
      return response;
    });
    expect(rejected.status).toBe(503);
    expect(rejected.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(await rejected.json()).toMatchObject({ type: 'urn:sluice:problem:overloaded' });

    // The workers come back, drain the queue, and submissions are accepted again.
    await stack().startService('batch-worker');
    const again = await waitFor(
      'submissions to be accepted again',
      async () => {
        const response = await submit(`/ok/${token()}`);
        return response.status === 202 && response;
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    accepted.push(((await again.json()) as { id: string }).id);
    // Nothing accepted was lost: every request (of either tenant) ends succeeded.
    await waitFor(
      `all ${accepted.length} accepted requests to succeed`,
      async () => {
        const history = await statusHistory(stack());
        return accepted.every((id) => history.get(id)?.at(-1)?.status === 'succeeded');
      },
      { timeoutMs: 60_000, intervalMs: 1_000 },
    );
  });
});
