import { mkdtemp, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '@sluice/testkit';
import { describe, expect, it } from 'vitest';
import {
  type GatewayConfigError,
  GatewayConfigWatcher,
  hashApiKey,
  type LoadedGatewayConfig,
  loadGatewayConfigFile,
} from '../src/index.ts';

const config = (timeoutMs: number) => `
version: 1
tenants:
  acme:
    apiKeys: [{ id: k1, sha256: ${hashApiKey('sk_test')} }]
    routes: [orders]
routes:
  orders:
    upstream: { targets: [{ url: "http://127.0.0.1:9000" }] }
    timeoutMs: ${timeoutMs}
`;

describe('GatewayConfigWatcher', () => {
  const replace = async (path: string, text: string) => {
    await writeFile(`${path}.next`, text);
    await rename(`${path}.next`, path);
  };

  it('applies a changed valid file, rejects an invalid one and keeps serving the last good one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-watch-'));
    const path = join(dir, 'gateway.yaml');
    await writeFile(path, config(1_000));
    const applied: LoadedGatewayConfig[] = [];
    const rejected: GatewayConfigError[] = [];
    const watcher = new GatewayConfigWatcher(path, await loadGatewayConfigFile(path), {
      intervalMs: 50,
      onApplied: (loaded) => applied.push(loaded),
      onRejected: (error) => rejected.push(error),
    });
    watcher.start();
    try {
      // Replaced the way editors and ConfigMaps do it: a new file renamed over the old.
      await replace(path, config(2_000));
      await waitFor('the new file to apply', () => applied.length === 1);
      expect(watcher.current().config.routes.orders?.timeoutMs).toBe(2_000);

      // Every change is a whole new file renamed into place: written in place, the file is empty for a moment
      // after it is truncated, and a poll that reads it then sees no configuration at all.
      await replace(path, config(3_000).replace('timeoutMs', 'timeout'));
      await waitFor('the invalid file to be rejected', () => rejected.length >= 1);
      expect(rejected[0]?.problems.join()).toContain('timeout');
      expect(watcher.current().config.routes.orders?.timeoutMs).toBe(2_000);
      expect(applied).toHaveLength(1);

      await replace(path, config(4_000));
      await waitFor('the fixed file to apply', () => applied.length === 2);
      expect(watcher.current().config.routes.orders?.timeoutMs).toBe(4_000);
      expect(watcher.current().version).not.toBe(applied[0]?.version);
    } finally {
      watcher.stop();
    }
  });
});
