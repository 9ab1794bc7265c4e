import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { repoRoot } from '@sluice/testkit';
import { describe, expect, it } from 'vitest';
import {
  configVersion,
  GatewayConfigError,
  generateApiKey,
  generateWebhookSecret,
  hashApiKey,
  parseGatewayConfig,
} from '../src/index.ts';

const key = hashApiKey('sk_test');
const minimal = `
version: 1
tenants:
  acme:
    apiKeys: [{ id: k1, sha256: ${key} }]
    routes: [orders]
routes:
  orders:
    upstream:
      targets: [{ url: "http://127.0.0.1:9000/api" }]
`;

function problems(text: string): string[] {
  try {
    parseGatewayConfig(text);
  } catch (error) {
    expect(error).toBeInstanceOf(GatewayConfigError);
    return (error as GatewayConfigError).problems;
  }
  throw new Error('expected the configuration to be rejected');
}

describe('parseGatewayConfig', () => {
  it('accepts the committed example, which `pnpm start` runs with', async () => {
    const text = await readFile(join(repoRoot(), 'deploy', 'gateway.example.yaml'), 'utf8');
    const { config, version } = parseGatewayConfig(text);
    expect(Object.keys(config.tenants)).toEqual(['acme', 'globex']);
    expect(config.tenants.acme?.apiKeys[0]?.sha256).toBe(hashApiKey('sk_sluice_demo_acme'));
    expect(config.admins?.apiKeys[0]?.sha256).toBe(hashApiKey('sk_sluice_demo_admin'));
    expect(version).toBe(configVersion(text));
  });

  it('fills defaults for limits, retries, deadlines and methods', () => {
    const { config } = parseGatewayConfig(minimal);
    const route = config.routes.orders;
    expect(route?.methods).toContain('POST');
    expect(route?.retry).toEqual({ maxAttempts: 5, baseDelayMs: 200, maxDelayMs: 30_000 });
    expect(route?.deadline.defaultMs).toBe(86_400_000);
    expect(config.limits.maxBatchRequests).toBe(1000);
    expect(config.limits.maxWaitSeconds).toBe(60);
    expect(config.callbacks.allowPrivateNetworks).toBe(false);
    expect(config.tenants.acme?.resultTopic).toBe(false);
  });

  it('rejects unknown keys, so that a misspelt setting is never silently ignored', () => {
    const found = problems(minimal.replace('    routes: [orders]', '    routes: [orders]\n    rout: [x]'));
    expect(found.join('\n')).toMatch(/tenants\.acme.*rout/);
  });

  it('rejects a tenant route that is not declared', () => {
    const found = problems(minimal.replace('routes: [orders]', 'routes: [orders, billing]'));
    expect(found).toEqual(['tenants.acme.routes.1: route "billing" is not declared under routes']);
  });

  it('rejects a key hash used twice', () => {
    const text = `${minimal}admins:\n  apiKeys: [{ id: ops, sha256: ${key} }]\n`;
    expect(problems(text).join('\n')).toContain('admins.apiKeys.0: the same key hash is already used');
  });

  it('rejects upstream URLs that are not http(s), names that cannot be topic names, and bad YAML', () => {
    expect(problems(minimal.replace('http://127.0.0.1:9000/api', 'file:///etc/passwd')).join()).toContain(
      'routes.orders.upstream.targets.0.url',
    );
    expect(problems(minimal.replace('  acme:', '  Acme Corp:')).join()).toContain('tenants.Acme Corp');
    expect(problems('version: 1\ntenants: [').join()).toContain('not valid YAML');
    expect(problems(minimal.replace('version: 1', 'version: 2')).join()).toContain('version');
  });

  it('rejects a default deadline above the maximum and a webhook secret in the wrong form', () => {
    const deadline = minimal.replace(
      '      targets: [{ url: "http://127.0.0.1:9000/api" }]',
      '      targets: [{ url: "http://127.0.0.1:9000/api" }]\n    deadline: { defaultMs: 7200000, maxMs: 3600000 }',
    );
    expect(problems(deadline)).toEqual(['routes.orders.deadline.defaultMs: must not exceed deadline.maxMs']);
    const secret = minimal.replace('routes: [orders]', 'routes: [orders]\n    webhookSecret: hunter2');
    expect(problems(secret).join()).toContain('tenants.acme.webhookSecret');
  });

  it('takes tenant rate limits, stream limits, backpressure bounds and callback networks, and checks them', () => {
    const { config } = parseGatewayConfig(
      minimal.replace(
        'routes: [orders]',
        'routes: [orders]\n    rateLimit: { requestsPerSecond: 50, burst: 100 }\n    maxEventStreams: 3',
      ) +
        'callbacks: { allowNetworks: ["10.20.0.0/16", "fd00::/8"] }\nbackpressure: { shedLag: 10, rejectLag: 20, maxAcceptWaitMs: 250, maxEventLoopDelayMs: 40, maxSubmissionsInFlight: 64 }\n',
    );
    expect(config.tenants.acme?.rateLimit).toEqual({ requestsPerSecond: 50, burst: 100 });
    expect(config.callbacks.allowNetworks).toEqual(['10.20.0.0/16', 'fd00::/8']);
    expect(config.backpressure).toEqual({
      shedLag: 10,
      rejectLag: 20,
      maxAcceptWaitMs: 250,
      maxEventLoopDelayMs: 40,
      maxSubmissionsInFlight: 64,
      maxQueueWaitMs: 5_000,
    });
    expect(parseGatewayConfig(minimal).config.backpressure).toEqual({
      shedLag: 500_000,
      rejectLag: 2_000_000,
      maxAcceptWaitMs: 1_000,
      maxEventLoopDelayMs: 100,
      maxSubmissionsInFlight: 512,
      maxQueueWaitMs: 5_000,
    });
    expect(problems(`${minimal}backpressure: { maxAcceptWaitMs: 10 }\n`)).toEqual([
      'backpressure.maxAcceptWaitMs: Too small: expected number to be >=50',
    ]);
    expect(
      problems(`${minimal}backpressure: { maxEventLoopDelayMs: 5, maxSubmissionsInFlight: 0 }\n`),
    ).toEqual([
      'backpressure.maxEventLoopDelayMs: Too small: expected number to be >=10',
      'backpressure.maxSubmissionsInFlight: Too small: expected number to be >=1',
    ]);
    expect(parseGatewayConfig(minimal).config.limits.maxEventStreamsPerTenant).toBe(20);
    expect(problems(`${minimal}callbacks: { allowNetworks: ["10.0.0.0/33", "hooks.example"] }\n`)).toEqual([
      'callbacks.allowNetworks.0: an IPv4 or IPv6 network in CIDR notation, e.g. 10.20.0.0/16',
      'callbacks.allowNetworks.1: an IPv4 or IPv6 network in CIDR notation, e.g. 10.20.0.0/16',
    ]);
    expect(problems(`${minimal}backpressure: { shedLag: 20, rejectLag: 20 }\n`)).toEqual([
      'backpressure.rejectLag: rejectLag must be larger than shedLag',
    ]);
  });
});

describe('keys', () => {
  it('generates keys and secrets in the accepted forms', () => {
    const apiKey = generateApiKey();
    expect(apiKey).toMatch(/^sk_sluice_[A-Za-z0-9_-]{43}$/);
    expect(hashApiKey(apiKey)).toMatch(/^[0-9a-f]{64}$/);
    const secret = generateWebhookSecret();
    const text = minimal.replace('routes: [orders]', `routes: [orders]\n    webhookSecret: "${secret}"`);
    expect(parseGatewayConfig(text).config.tenants.acme?.webhookSecret).toBe(secret);
  });
});

describe('the secrets file', () => {
  const secrets = `
tenants:
  acme:
    apiKeys: [{ id: from-secret, sha256: ${hashApiKey('sk_secret')} }]
    webhookSecret: "whsec_c2x1aWNlLXRlc3Qtd2ViaG9vay1zZWNyZXQtZm9yLXVuaXQ="
admins:
  apiKeys: [{ id: ops, sha256: ${hashApiKey('sk_ops')} }]
`;

  it('merges key hashes and webhook secrets into the gateway file, and changes the version', () => {
    const withoutKeys = minimal.replace(`    apiKeys: [{ id: k1, sha256: ${key} }]\n`, '');
    const merged = parseGatewayConfig(withoutKeys, 'gateway.yaml', { text: secrets, source: 'secrets.yaml' });
    expect(merged.config.tenants.acme?.apiKeys[0]?.id).toBe('from-secret');
    expect(merged.config.tenants.acme?.webhookSecret).toMatch(/^whsec_/);
    expect(merged.config.admins?.apiKeys[0]?.id).toBe('ops');
    expect(merged.version).not.toBe(configVersion(withoutKeys));
  });

  it('rejects secrets of a tenant the gateway file does not have, and anything but keys and secrets', () => {
    expect(() =>
      parseGatewayConfig(minimal, 'gateway.yaml', {
        text: 'tenants:\n  nobody:\n    webhookSecret: x\n',
        source: 's.yaml',
      }),
    ).toThrow(/tenants\.nobody: not a tenant/);
    expect(() =>
      parseGatewayConfig(minimal, 'gateway.yaml', {
        text: 'tenants:\n  acme:\n    routes: [x]\n',
        source: 's.yaml',
      }),
    ).toThrow(GatewayConfigError);
  });
});
