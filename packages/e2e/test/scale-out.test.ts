import { randomUUID } from 'node:crypto';
import { isTerminal, tenantResultTopicName } from '@sluice/contracts';
import { type ServiceName, type ServiceProcess, serviceNames, waitFor } from '@sluice/testkit';
import { beforeAll, describe, expect, it } from 'vitest';
import { readTopic, statusHistory, tenantKeys } from '../src/harness.ts';
import { stackPerFile } from '../src/stack-per-file.ts';
import { ScriptedUpstream } from '../src/upstream.ts';

const upstream = new ScriptedUpstream();
const stack = stackPerFile(() => ({ upstream: upstream.handler, env: { KAFKA_TOPIC_PARTITIONS: '6' } }));
const second = {} as Record<ServiceName, ServiceProcess>;
beforeAll(async () => {
  for (const name of serviceNames) second[name] = await stack().spawn(name);
}, 300_000);

interface BatchDocument {
  status: string;
  total: number;
  counts: Record<string, number>;
  items: Array<{ id: string; status: string }>;
}

async function batch(ingress: string, batchId: string): Promise<BatchDocument> {
  const response = await fetch(`${ingress}/v1/batches/${batchId}`, {
    headers: { authorization: `Bearer ${tenantKeys.acme}` },
  });
  return (await response.json()) as BatchDocument;
}

describe('two instances of every service', () => {
  it('carry 5,000 requests while one instance of each stops, each request ending exactly once', async () => {
    const run = randomUUID().slice(0, 8);
    const ingresses = [stack().services.ingress.url, second.ingress.url];
    const batchIds: string[] = [];
    const ids: string[] = [];
    let retried = 0;
    // A batch of 250, sent to one ingress instance and, like a load balancer would, to the other when that one
    // refuses or goes away; its idempotency key makes the retry of an ambiguous failure the same batch.
    const submit = async (b: number) => {
      const requests = Array.from({ length: 250 }, (_, i) => ({
        route: 'e2e',
        method: 'GET',
        // The last batch before the stop is held by the upstream until the stop signals are sent: work is then in
        // flight when the instances stop, however fast the machine got through the rest.
        path: b === 9 ? `/hold/${run}-tail/${i}` : `/slow/${run}-${b}-${i}/20`,
      }));
      for (let attempt = 0; attempt < 10; attempt += 1) {
        if (attempt > 0) retried += 1;
        let response: Response;
        try {
          response = await fetch(`${ingresses[(b + attempt) % 2]}/v1/batches`, {
            method: 'POST',
            headers: {
              authorization: `Bearer ${tenantKeys.acme}`,
              'content-type': 'application/json',
              'idempotency-key': `${run}-batch-${b}`,
            },
            body: JSON.stringify({ requests }),
          });
        } catch {
          continue; // refused or reset: the instance is stopping
        }
        if (response.status === 503) continue;
        expect(response.status, await response.clone().text()).toBe(202);
        const body = (await response.json()) as { batchId: string; ids: string[] };
        batchIds.push(body.batchId);
        ids.push(...body.ids);
        return;
      }
      throw new Error(`batch ${b} was not accepted by either ingress instance`);
    };
    const terminalCount = async () => {
      let total = 0;
      for (const batchId of [...batchIds]) {
        const doc = await batch(stack().services.ingress.url, batchId);
        total += doc.items.filter((item) => isTerminal(item.status as never)).length;
      }
      return total;
    };
    // 20 batches of 250 alternating between the two ingress instances (no sticky routing): half before the
    // stop, half while one instance of each service stops.
    for (let b = 0; b < 10; b += 1) await submit(b);
    await waitFor('the load to be under way', async () => (await terminalCount()) >= 500, {
      timeoutMs: 60_000,
      intervalMs: 200,
    });
    const midway = await terminalCount();
    expect(midway).toBeLessThanOrEqual(2_250);
    // One instance of each service stops in the middle; the other takes over its partitions and its clients.
    const stopping = Promise.all([
      ...serviceNames.map((name) => (name === 'ingress' ? second.ingress : second[name]).stop('SIGTERM')),
      (async () => {
        for (let b = 10; b < 20; b += 1) await submit(b);
      })(),
    ]);
    // The SIGTERMs are sent (stop signals at once); the held batch is answered while the instances drain.
    upstream.release(`${run}-tail`);
    await stopping;
    expect(ids).toHaveLength(5_000);
    expect(new Set(batchIds).size).toBe(20);
    const started = Date.now();
    await waitFor(
      'every batch to complete',
      async () => {
        for (const batchId of batchIds)
          if ((await batch(stack().services.ingress.url, batchId)).status !== 'completed') return false;
        return true;
      },
      { timeoutMs: 240_000, intervalMs: 500 },
    );
    console.log(
      `scale-out: ${midway} of 5000 terminal when one instance of each service stopped, while the second half was submitted (${retried} submissions retried on the other ingress); the rest completed ${((Date.now() - started) / 1000).toFixed(1)} s later`,
    );

    // Exactly one terminal status per request, in the status topic itself.
    const history = await statusHistory(stack());
    let multiple = 0;
    for (const id of ids) {
      const terminal = new Set(
        (history.get(id) ?? []).filter((s) => isTerminal(s.status)).map((s) => s.status),
      );
      if (terminal.size !== 1) multiple += 1;
      expect([...terminal], id).toEqual(['succeeded']);
    }
    expect(multiple).toBe(0);

    // Lookups agree from both ingress instances: the survivor, and a new instance started now.
    const replacement = await stack().spawn('ingress');
    for (const batchId of batchIds) {
      const [a, b] = await Promise.all([
        batch(stack().services.ingress.url, batchId),
        batch(replacement.url, batchId),
      ]);
      expect(b.items).toEqual(a.items);
      expect(a.counts.succeeded).toBe(250);
    }

    // The result topic: every request's CloudEvent at least once; duplicates counted and reported.
    const events = await readTopic(stack().kafka, tenantResultTopicName('acme', stack().prefix));
    const perRequest = new Map<string, number>();
    for (const record of events) {
      const key = record.key?.toString() ?? '';
      perRequest.set(key, (perRequest.get(key) ?? 0) + 1);
    }
    const missing = ids.filter((id) => !perRequest.has(id));
    const duplicates = ids.reduce((sum, id) => sum + Math.max(0, (perRequest.get(id) ?? 0) - 1), 0);
    console.log(
      `scale-out: result topic holds ${events.length} events for 5000 requests and 20 batches; ${duplicates} duplicates, ${missing.length} missing`,
    );
    expect(missing).toEqual([]);
    // At least once: only records in flight in the delivery instance that stopped may be delivered again, at most
    // its in-flight bound (DELIVERY_MAX_IN_FLIGHT, 256); a graceful stop drains them, so usually none.
    expect(duplicates).toBeLessThanOrEqual(256);
  });
});
