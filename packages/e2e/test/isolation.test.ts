import { randomUUID } from 'node:crypto';
import { tenantResultTopicName } from '@sluice/contracts';
import { waitFor } from '@sluice/testkit';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { adminKey, api, readTopic, tenantKeys, terminalStatusOf, webhookSecret } from '../src/harness.ts';
import { stackPerFile } from '../src/stack-per-file.ts';
import { ScriptedUpstream } from '../src/upstream.ts';

const upstream = new ScriptedUpstream();
const stack = stackPerFile(() => ({ upstream: upstream.handler }));

const token = () => randomUUID().slice(0, 8);

describe('two tenants', () => {
  it('never see each other: statuses, waits, batches, event streams, idempotency keys, result topics, webhooks and admin endpoints', async () => {
    const key = `shared-key-${token()}`;
    const acmeSingle = await api(stack(), '/v1/requests', {
      key: tenantKeys.acme,
      headers: { 'idempotency-key': key },
      json: {
        route: 'e2e',
        method: 'GET',
        path: `/ok/${token()}`,
        callback: { url: `${stack().receiver.url}/hooks/isolation-acme` },
      },
    });
    const globexSingle = await api(stack(), '/v1/requests', {
      key: tenantKeys.globex,
      headers: { 'idempotency-key': key },
      json: { route: 'e2e', method: 'GET', path: `/ok/${token()}` },
    });
    expect([acmeSingle.status, globexSingle.status]).toEqual([202, 202]);
    const acmeId = ((await acmeSingle.json()) as { id: string }).id;
    const globexId = ((await globexSingle.json()) as { id: string }).id;
    // The same idempotency key in two tenants names two requests.
    expect(acmeId).not.toBe(globexId);

    const acmeBatch = await api(stack(), '/v1/batches', {
      key: tenantKeys.acme,
      json: { requests: [{ route: 'e2e', method: 'GET', path: `/ok/${token()}` }] },
    });
    const { batchId } = (await acmeBatch.json()) as { batchId: string };

    for (const [id, owner, other] of [
      [acmeId, tenantKeys.acme, tenantKeys.globex],
      [globexId, tenantKeys.globex, tenantKeys.acme],
    ] as const) {
      expect((await api(stack(), `/v1/requests/${id}`, { key: owner })).status).toBe(200);
      expect((await api(stack(), `/v1/requests/${id}`, { key: other })).status).toBe(404);
      expect(
        (await api(stack(), `/v1/requests/${id}`, { key: other, headers: { prefer: 'wait=1' } })).status,
      ).toBe(404);
      expect((await api(stack(), `/v1/batches/${id}`, { key: other })).status).toBe(404);
    }
    for (const path of [`/v1/batches/${batchId}`, `/v1/batches/${batchId}/events`]) {
      expect((await api(stack(), path, { key: tenantKeys.globex })).status, path).toBe(404);
    }
    // A route the tenant is not given is refused, whichever form names it.
    expect(
      (
        await api(stack(), '/v1/requests', {
          key: tenantKeys.globex,
          json: { route: 'e2e-slow', method: 'GET', path: '/' },
        })
      ).status,
    ).toBe(403);
    expect((await api(stack(), '/r/e2e-slow/x', { key: tenantKeys.globex })).status).toBe(403);
    // Scopes: tenant keys cannot use admin endpoints, admin keys cannot read tenants' requests.
    expect(
      (await api(stack(), `/v1/requests/${acmeId}/redrive`, { key: tenantKeys.acme, method: 'POST' })).status,
    ).toBe(403);
    expect((await api(stack(), '/v1/redrives', { key: tenantKeys.globex, json: {} })).status).toBe(403);
    expect((await api(stack(), `/v1/requests/${acmeId}`, { key: adminKey })).status).toBe(403);

    await terminalStatusOf(stack(), acmeId);
    // acme's result topic carries acme's completions only.
    const acmeTopic = tenantResultTopicName('acme', stack().prefix);
    const records = await waitFor('acme completion on its result topic', async () => {
      const all = await readTopic(stack().kafka, acmeTopic);
      return all.some((r) => r.key?.toString() === acmeId) && all;
    });
    expect(records.some((r) => r.key?.toString() === globexId)).toBe(false);
    expect(records.every((r) => r.headers.ce_source === '/sluice/tenants/acme')).toBe(true);

    // acme's webhook is signed with acme's secret and carries acme's request only.
    const hook = await waitFor('acme webhook', () =>
      stack().receiver.calls.find((c) => c.path === '/hooks/isolation-acme'),
    );
    const headers = Object.fromEntries(Object.entries(hook.headers).map(([k, v]) => [k, String(v)]));
    const payload = new Webhook(webhookSecret).verify(hook.body, headers) as { data: { id: string } };
    expect(payload.data.id).toBe(acmeId);
    expect(hook.body.toString()).not.toContain(globexId);
    expect(hook.body.toString()).not.toContain('"tenant"');
    // globex has no webhook secret: it cannot ask for callbacks at all.
    const refused = await api(stack(), '/v1/requests', {
      key: tenantKeys.globex,
      json: { route: 'e2e', method: 'GET', path: '/', callback: { url: `${stack().receiver.url}/hooks/x` } },
    });
    expect(refused.status).toBe(422);
  });
});
