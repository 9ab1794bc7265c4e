import { randomUUID } from 'node:crypto';
import { groupName, isTerminal } from '@sluice/contracts';
import { type ServiceName, waitFor } from '@sluice/testkit';
import { describe, expect, it } from 'vitest';
import { api, statusHistory, statusOf, terminalStatusOf } from '../src/harness.ts';
import { stackPerFile } from '../src/stack-per-file.ts';
import { callsTo, ScriptedUpstream } from '../src/upstream.ts';

const upstream = new ScriptedUpstream();
const stack = stackPerFile(() => ({ upstream: upstream.handler }));

interface BatchDocument {
  status: string;
  total: number;
  counts: Record<string, number>;
}

const terminalCount = (batch: BatchDocument) =>
  ['succeeded', 'failed', 'expired', 'dead'].reduce((sum, status) => sum + (batch.counts[status] ?? 0), 0);

async function batchOf(batchId: string): Promise<BatchDocument> {
  return (await (await api(stack(), `/v1/batches/${batchId}`)).json()) as BatchDocument;
}

describe('a service restarted in the middle of a batch of 1000', () => {
  it.each(['batch-worker', 'aggregator', 'delivery', 'ingress'] satisfies ServiceName[])(
    '%s: every request still reaches exactly one terminal status',
    async (service) => {
      const run = randomUUID().slice(0, 8);
      const requests = Array.from({ length: 1000 }, (_, i) => ({
        route: 'e2e',
        method: 'GET',
        // Every 50th request is held by the upstream until the restart has begun, so that the restart always
        // falls in the middle of the batch, however fast the machine works through the rest.
        path: i % 50 === 49 ? `/hold/${run}-late/${i}` : `/slow/${run}-${i}/40`,
      }));
      const response = await api(stack(), '/v1/batches', {
        json: { requests, callback: { url: `${stack().receiver.url}/hooks/${run}` } },
      });
      expect(response.status).toBe(202);
      const { batchId, ids } = (await response.json()) as { batchId: string; ids: string[] };
      await waitFor('the batch to be under way', async () => terminalCount(await batchOf(batchId)) >= 50);
      // restart() sends the stop signal before its first await: the held requests are answered after it, while
      // a stopping batch-worker drains them.
      const restarted = stack().restart(service);
      upstream.release(`${run}-late`);
      await restarted;
      const after = await waitFor(
        'the batch to complete',
        async () => {
          const batch = await batchOf(batchId);
          return batch.status === 'completed' && batch;
        },
        { timeoutMs: 120_000 },
      );
      expect(after).toMatchObject({ total: 1000, counts: { succeeded: 1000 } });

      const history = await statusHistory(stack());
      for (const id of ids) {
        const statuses = history.get(id) ?? [];
        const terminal = new Set(statuses.filter((s) => isTerminal(s.status)).map((s) => s.status));
        expect([...terminal], `terminal statuses of ${id}`).toEqual(['succeeded']);
        expect(statuses.at(-1)?.status, `last status record of ${id}`).toBe('succeeded');
      }
      await waitFor('the batch callback', () =>
        stack().receiver.calls.some((c) => c.path === `/hooks/${run}`),
      );
    },
  );
});

describe('deadlines', () => {
  it('expires a request that waited past its deadline, and never sends it', async () => {
    await stack().stopService('batch-worker');
    const path = `/ok/${randomUUID().slice(0, 8)}`;
    const response = await api(stack(), '/v1/requests', {
      json: { route: 'e2e', method: 'GET', path, deadlineMs: 1_000 },
    });
    const { id } = (await response.json()) as { id: string };
    // With no worker consuming, the queue position of new requests grows with the measured lag.
    const queued = await waitFor('a position from the sampled lag', async () => {
      const more = await api(stack(), '/v1/requests', {
        json: { route: 'e2e', method: 'GET', path: '/ok/queued' },
      });
      const body = (await more.json()) as { queue: { position: number; estimatedMs: number | null } };
      return body.queue.position >= 3 && body.queue;
    });
    expect(queued.estimatedMs === null || queued.estimatedMs > 0).toBe(true);
    const expired = await terminalStatusOf(stack(), id);
    expect(expired).toMatchObject({ status: 'expired', attempts: 0, error: { code: 'DEADLINE_PASSED' } });
    await stack().startService('batch-worker');
    const admin = stack().kafka.admin();
    await waitFor('the batch-workers to catch up', async () => {
      const lag = await admin.groupLag(groupName('batchWorker', stack().prefix), [stack().topic('requests')]);
      return lag.every((partition) => partition.lag === 0n);
    });
    await admin.close();
    expect(callsTo(stack().upstream.calls, `/up${path}`)).toHaveLength(0);
    expect((await statusOf(stack(), id)).status).toBe('expired');
  });
});
