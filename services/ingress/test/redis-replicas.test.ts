import { codecs } from '@sluice/contracts';
import { hashApiKey } from '@sluice/gateway-config';
import type { ConsumedRecord } from '@sluice/kafka';
import { type RedisServer, startRedis, uniqueName } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, gatewayYaml, type Ingress, readTopic, startIngress } from './harness.ts';

/**
 * Two ingress replicas on one Redis and one set of topics, with no sticky routing: each request goes to either.
 * What Redis must make exact across them: idempotency and tenants' rate limits.
 */
const limitedKey = 'sk_test_initech_0123456789';
// Low enough that clients slowed down by a busy machine still ask for several times what it allows.
const rate = { requestsPerSecond: 10, burst: 5 };
const yaml = gatewayYaml.replace(
  'admins:',
  `  initech:
    apiKeys: [{ id: initech-test, sha256: ${hashApiKey(limitedKey)} }]
    routes: [echo]
    rateLimit: { requestsPerSecond: ${rate.requestsPerSecond}, burst: ${rate.burst} }
admins:`,
);

let redis: RedisServer;
let replicas: Ingress[] = [];
beforeAll(async () => {
  redis = await startRedis();
  const prefix = `${uniqueName('replicas')}.`;
  const state = { url: redis.url, keyPrefix: `${uniqueName('state')}:` };
  replicas = [
    await startIngress(prefix, yaml, undefined, state),
    await startIngress(prefix, yaml, undefined, state),
  ];
}, 120_000);
afterAll(async () => {
  for (const replica of replicas) await replica.close();
  await redis?.stop();
});

const submission = { route: 'echo', method: 'POST', path: '/orders', body: { sku: 'a-1' } };

describe('two ingress replicas on Redis', () => {
  it('decide 50 concurrent duplicates of one idempotency key with one request id, enqueued once', async () => {
    const key = uniqueName('idem');
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        call(replicas[i % 2] as Ingress, '/v1/requests', {
          json: submission,
          headers: { 'idempotency-key': key },
        }),
      ),
    );
    expect(new Set(answers.map((r) => r.status))).toEqual(new Set([202]));
    const ids = await Promise.all(answers.map(async (r) => ((await r.json()) as { id: string }).id));
    expect(new Set(ids).size).toBe(1);
    expect(answers.filter((r) => r.headers.get('idempotent-replayed') === 'true')).toHaveLength(49);
    const records = (
      await readTopic(replicas[0]?.kafka as Ingress['kafka'], replicas[0]?.topic('requests') ?? '')
    ).filter((record: ConsumedRecord) => {
      const decoded = codecs.request.decode(record);
      return decoded.ok && decoded.value.idempotency?.key === key;
    });
    expect(records).toHaveLength(1);
    // Either replica finds the request at once: its status is in the shared store.
    for (const replica of replicas) {
      expect((await call(replica, `/v1/requests/${ids[0]}`)).status).toBe(200);
    }
  });

  it("hold a tenant's rate limit across both replicas within 10%", async () => {
    const seconds = 4;
    const started = Date.now();
    let accepted = 0;
    let refused = 0;
    // Eight clients, four per replica, send as fast as they are answered for `seconds`.
    await Promise.all(
      Array.from({ length: 8 }, async (_, client) => {
        while (Date.now() - started < seconds * 1000) {
          const response = await call(replicas[client % 2] as Ingress, '/v1/requests', {
            key: limitedKey,
            json: submission,
          });
          if (response.status === 202) accepted += 1;
          else if (response.status === 429) refused += 1;
          else throw new Error(`unexpected ${response.status}`);
          await response.arrayBuffer();
        }
      }),
    );
    // What the limit allowed is counted over the span the replicas accepted requests in (their acceptedAt, in
    // the records themselves), not over the test's wall clock: a stalled client at either end would otherwise
    // change the allowance without changing what the limiter did.
    const acceptedAt = (
      await readTopic(replicas[0]?.kafka as Ingress['kafka'], replicas[0]?.topic('requests') ?? '')
    )
      .map((record) => codecs.request.decode(record))
      .flatMap((decoded) =>
        decoded.ok && decoded.value.tenant === 'initech' ? [decoded.value.acceptedAt] : [],
      );
    expect(acceptedAt).toHaveLength(accepted);
    const spanSeconds = (Math.max(...acceptedAt) - Math.min(...acceptedAt)) / 1000;
    const allowed = rate.burst + rate.requestsPerSecond * spanSeconds;
    console.log(
      `rate limit: ${accepted} accepted and ${refused} refused in ${spanSeconds} s; ${allowed} allowed`,
    );
    expect(refused).toBeGreaterThan(accepted);
    expect(Math.abs(accepted - allowed) / allowed).toBeLessThan(0.1);
    // Without a shared counter each replica would have allowed the whole rate: about twice as many.
    expect(accepted).toBeLessThan(allowed * 1.1);
  });
});
