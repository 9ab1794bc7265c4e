import { randomUUID } from 'node:crypto';
import { isTerminal } from '@sluice/contracts';
import { type RedisServer, type ServiceProcess, startRedis, uniqueName, waitFor } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricSum } from '../src/audit.ts';
import { statusHistory, tenantKeys } from '../src/harness.ts';
import { stackPerFile } from '../src/stack-per-file.ts';
import { ScriptedUpstream } from '../src/upstream.ts';

/**
 * The shared state store lost and found again: two ingress replicas on one Redis, Redis killed in the middle of
 * a run and restarted empty. Kafka is the source of truth, so nothing accepted may be lost, and once Redis is
 * back the store is filled again from the status topic.
 */
let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});
const stack = stackPerFile(() => ({
  upstream: new ScriptedUpstream().handler,
  env: { STATE_STORE: 'redis', REDIS_URL: redis.url, REDIS_KEY_PREFIX: `${uniqueName('e2e-state')}:` },
}));
let second: ServiceProcess;
beforeAll(async () => {
  second = await stack().spawn('ingress');
}, 120_000);

const replicas = () => [stack().ingress, second.url];
const headers = { authorization: `Bearer ${tenantKeys.acme}`, 'content-type': 'application/json' };
const submit = (i: number, extra: Record<string, string> = {}) =>
  fetch(`${replicas()[i % 2]}/v1/requests`, {
    method: 'POST',
    headers: { ...headers, ...extra },
    body: JSON.stringify({ route: 'e2e', method: 'GET', path: `/slow/${randomUUID()}/50` }),
  });
const lookup = (i: number, id: string) =>
  fetch(`${replicas()[i % 2]}/v1/requests/${id}`, { headers: { authorization: headers.authorization } });

describe('two replicas feeding one Redis', () => {
  it('write each status to it once between them, not once each', async () => {
    const admin = stack().kafka.admin();
    const statusRecords = async () =>
      (await admin.topicOffsets([stack().topic('status')])).reduce(
        (sum, range) => sum + Number(range.end),
        0,
      );
    const applied = () =>
      Promise.all(
        [stack().services.ingress, second].map((p) => metricSum(p, 'sluice_status_feed_applied_total')),
      );
    try {
      const recordsBefore = await statusRecords();
      const appliedBefore = await applied();
      const ids: string[] = [];
      for (let i = 0; i < 40; i += 1) {
        const response = await submit(i);
        expect(response.status).toBe(202);
        ids.push(((await response.json()) as { id: string }).id);
      }
      await waitFor('all 40 to succeed', async () => {
        for (const [i, id] of ids.entries()) {
          const response = await lookup(i, id);
          if (
            response.status !== 200 ||
            ((await response.json()) as { status: string }).status !== 'succeeded'
          ) {
            return false;
          }
        }
        return true;
      });
      const written = (await statusRecords()) - recordsBefore;
      const share = async () => (await applied()).map((count, i) => count - (appliedBefore[i] as number));
      // Every status reaches the store through one replica or the other...
      await waitFor(
        'every status written to be applied',
        async () => (await share()).reduce((a, b) => a + b) >= written,
      );
      const [first, other] = await share();
      // ...and once: each replica applying every status would make the sum twice the records (a status applied again
      // after a rebalance is allowed, not a second copy of everything).
      expect((first as number) + (other as number)).toBeLessThan(1.5 * written);
      expect(first).toBeGreaterThan(0);
      expect(other).toBeGreaterThan(0);
    } finally {
      await admin.close();
    }
  });
});

describe('Redis killed mid-run and restarted empty', () => {
  it('loses no accepted request, answers lookups 503 meanwhile, and agrees with the status topic once refilled', async () => {
    const accepted: string[] = [];
    const accept = async (response: Response) => {
      expect(response.status, `${accepted.length}: ${await response.clone().text()}`).toBe(202);
      accepted.push(((await response.json()) as { id: string }).id);
    };
    for (let i = 0; i < 40; i += 1) await accept(await submit(i));

    // Four clients keep submitting while Redis is killed, so that some submissions are in flight at the kill.
    // They go on being accepted: Kafka, not Redis, is what makes them accepted.
    let killedAt = Number.POSITIVE_INFINITY;
    let afterKill = 0;
    const lanes = Array.from({ length: 4 }, async (_, lane) => {
      for (let i = lane; afterKill < 40; i += 4) {
        const sentAt = Date.now();
        await accept(await submit(i));
        if (sentAt > killedAt) afterKill += 1;
      }
    });
    await waitFor('20 more submissions under way', () => accepted.length >= 60, { intervalMs: 5 });
    await redis.kill('SIGKILL');
    killedAt = Date.now();
    await Promise.all(lanes);
    const lookupDuringOutage = await waitFor('lookups to say the store is away', async () => {
      const response = await lookup(0, accepted[0] as string);
      return response.status === 503 && response;
    });
    expect(lookupDuringOutage.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(await lookupDuringOutage.json()).toMatchObject({ type: 'urn:sluice:problem:state-unavailable' });
    // A keyed submission and the client's retry on the other replica: no store can arbitrate the key, so both
    // are accepted under the id every replica derives from the key and content, and are one request downstream.
    const key = uniqueName('k');
    const keyedBody = JSON.stringify({ route: 'e2e', method: 'GET', path: `/slow/${randomUUID()}/50` });
    const keyed = await Promise.all(
      [0, 1].map(async (i) => {
        const response = await fetch(`${replicas()[i]}/v1/requests`, {
          method: 'POST',
          headers: { ...headers, 'idempotency-key': key },
          body: keyedBody,
        });
        expect(response.status, await response.clone().text()).toBe(202);
        return ((await response.json()) as { id: string }).id;
      }),
    );
    expect(keyed[0]).toBe(keyed[1]);
    const keyedId = keyed[0] as string;
    accepted.push(keyedId);

    await redis.restart();
    // Filled again from the status topic: every accepted request is found, on both replicas, and ends succeeded.
    await waitFor(
      `all ${accepted.length} requests to be found succeeded on both replicas`,
      async () => {
        for (const [i, id] of accepted.entries()) {
          const response = await lookup(i, id);
          if (response.status !== 200) return false;
          if (((await response.json()) as { status: string }).status !== 'succeeded') return false;
        }
        return true;
      },
      { timeoutMs: 120_000, intervalMs: 1_000 },
    );
    // Once the store is back it knows the key from the statuses that carry it: a later retry is the same request.
    const retry = await fetch(`${replicas()[0]}/v1/requests`, {
      method: 'POST',
      headers: { ...headers, 'idempotency-key': key },
      body: keyedBody,
    });
    expect([200, 202]).toContain(retry.status);
    expect(((await retry.json()) as { id: string }).id).toBe(keyedId);
    expect(
      await metricSum(stack().services.ingress, 'sluice_idempotency_unarbitrated_total'),
    ).toBeGreaterThanOrEqual(1);
    // Nothing inconsistent: exactly one terminal status per request on the topic, and both replicas' answers
    // are the topic's last word.
    const history = await statusHistory(stack());
    for (const [i, id] of accepted.entries()) {
      const statuses = history.get(id) ?? [];
      expect(new Set(statuses.filter((s) => isTerminal(s.status)).map((s) => s.status))).toEqual(
        new Set(['succeeded']),
      );
      const other = await lookup(i + 1, id);
      expect(((await other.json()) as { status: string }).status).toBe(statuses.at(-1)?.status);
    }
  });
});
