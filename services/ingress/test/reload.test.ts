import { mkdtemp, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashApiKey } from '@sluice/gateway-config';
import { ServiceProcess, uniqueName, waitFor } from '@sluice/testkit';
import { describe, expect, inject, it } from 'vitest';
import { keys } from './harness.ts';

const file = (routes: string[]) => `
version: 1
tenants:
  acme:
    apiKeys: [{ id: acme-test, sha256: ${hashApiKey(keys.acme)} }]
    routes: [${routes.join(', ')}]
# A busy test machine can be slow to acknowledge; this test is about reloads, not shedding.
backpressure: { maxAcceptWaitMs: 60000, maxEventLoopDelayMs: 60000 }
routes:
${routes.map((name) => `  ${name}:\n    upstream: { targets: [{ url: "http://127.0.0.1:9/${name}" }] }`).join('\n')}
`;

describe('gateway file hot reload', () => {
  it('applies a valid change without a restart and rejects an invalid one, the running configuration still serving', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-reload-'));
    const path = join(dir, 'gateway.yaml');
    await writeFile(path, file(['echo']));
    const ingress = await ServiceProcess.start({
      name: 'ingress',
      env: {
        KAFKA_BROKERS: inject('kafkaBrokers'),
        KAFKA_TOPIC_PREFIX: `${uniqueName('reload')}.`,
        KAFKA_TOPIC_PARTITIONS: '1',
        SLUICE_GATEWAY_CONFIG: path,
        CONFIG_POLL_INTERVAL_MS: '100',
        LOG_LEVEL: 'warn',
      },
    });
    const version = async () =>
      ((await (await fetch(`${ingress.url}/readyz`)).json()) as { info: { configVersion: string } }).info
        .configVersion;
    const submit = (route: string) =>
      fetch(`${ingress.url}/v1/requests`, {
        method: 'POST',
        headers: { authorization: `Bearer ${keys.acme}`, 'content-type': 'application/json' },
        body: JSON.stringify({ route, method: 'GET', path: '/' }),
      });
    const reloads = async (outcome: string) => {
      const text = await (await fetch(`${ingress.url}/metrics`)).text();
      const line = text
        .split('\n')
        .find((l) => l.startsWith('sluice_config_reloads_total{') && l.includes(`outcome="${outcome}"`));
      return Number(line?.split(' ').at(-1) ?? 0);
    };
    const replace = async (text: string) => {
      await writeFile(`${path}.next`, text);
      await rename(`${path}.next`, path);
    };
    try {
      await ingress.waitReady();
      const first = await version();
      expect((await submit('extra')).status).toBe(404);

      // Changes are whole files renamed into place (as a ConfigMap's are): a file written in place is empty for
      // a moment after it is truncated, and a poll then would see no configuration at all.
      await replace(file(['echo', 'extra']));
      const second = await waitFor('the new version in /readyz', async () => {
        const current = await version();
        return current !== first && current;
      });
      expect((await submit('extra')).status).toBe(202);
      expect(await reloads('applied')).toBe(1);
      const info = await (await fetch(`${ingress.url}/metrics`)).text();
      expect(info).toMatch(new RegExp(`sluice_config_info\\{[^}]*version="${second}"`));

      await replace(`${file(['echo', 'extra'])}\n    timeout: 5\n`);
      await waitFor('the invalid file to be rejected', async () => (await reloads('rejected')) >= 1);
      expect(await version()).toBe(second);
      expect((await submit('extra')).status).toBe(202);
      expect(ingress.output()).toContain('gateway configuration rejected; the running one stays');
    } finally {
      await ingress.stop();
    }
  });
});
