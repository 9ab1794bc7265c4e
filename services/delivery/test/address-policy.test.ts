import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it } from 'vitest';
import { addressRange, callbackAddressVerdict, isPublicAddress } from '../src/address-policy.ts';
import { WebhookSender, webhookVerdict } from '../src/webhook.ts';

describe('isPublicAddress', () => {
  it.each([
    ['127.0.0.1', false],
    ['10.1.2.3', false],
    ['172.16.0.1', false],
    ['192.168.1.1', false],
    ['169.254.169.254', false],
    ['100.64.0.1', false],
    ['0.0.0.0', false],
    ['224.0.0.1', false],
    ['::1', false],
    ['fe80::1', false],
    ['fd00::1', false],
    ['::ffff:127.0.0.1', false],
    ['::ffff:10.0.0.1', false],
    ['93.184.216.34', true],
    ['2606:4700::1111', true],
    ['not an address', false],
  ])('%s is public: %s', (address, expected) => {
    expect(isPublicAddress(address)).toBe(expected);
  });

  it('names the range of a refused address', () => {
    expect(addressRange('169.254.169.254')).toBe('linkLocal');
    expect(addressRange('::ffff:127.0.0.1')).toBe('loopback');
  });
});

describe('callbackAddressVerdict', () => {
  const none = { allowPrivateNetworks: false, allowNetworks: [] };
  it('allows public addresses, and private ones only when allowed or listed', () => {
    expect(callbackAddressVerdict('93.184.216.34', none)).toEqual({ allowed: true });
    expect(callbackAddressVerdict('10.20.1.5', none)).toEqual({ allowed: false, range: 'private' });
    expect(callbackAddressVerdict('10.20.1.5', { ...none, allowNetworks: ['10.20.0.0/16'] })).toEqual({
      allowed: true,
    });
    expect(callbackAddressVerdict('10.21.1.5', { ...none, allowNetworks: ['10.20.0.0/16'] })).toMatchObject({
      allowed: false,
    });
    // An IPv4-mapped IPv6 address is judged as the IPv4 address it carries.
    expect(callbackAddressVerdict('::ffff:10.20.1.5', { ...none, allowNetworks: ['10.20.0.0/16'] })).toEqual({
      allowed: true,
    });
    expect(callbackAddressVerdict('fd00::7', { ...none, allowNetworks: ['fd00::/8'] })).toEqual({
      allowed: true,
    });
    expect(callbackAddressVerdict('127.0.0.1', { ...none, allowPrivateNetworks: true })).toEqual({
      allowed: true,
    });
  });

  it('refuses the cloud metadata address even with private networks allowed, unless listed', () => {
    const open = { allowPrivateNetworks: true, allowNetworks: [] };
    expect(callbackAddressVerdict('169.254.169.254', open)).toEqual({
      allowed: false,
      range: 'cloudMetadata',
    });
    expect(callbackAddressVerdict('fd00:ec2::254', open)).toEqual({ allowed: false, range: 'cloudMetadata' });
    expect(
      callbackAddressVerdict('169.254.169.254', { ...open, allowNetworks: ['169.254.169.254/32'] }),
    ).toEqual({ allowed: true });
  });
});

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
});

async function receiver(status = 204, headers: Record<string, string> = {}) {
  const received: Array<{ headers: Record<string, string>; body: string }> = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      received.push({ headers: req.headers as Record<string, string>, body });
      res.writeHead(status, headers);
      res.end();
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, received };
}

const secret = 'whsec_c2x1aWNlLXRlc3Qtd2ViaG9vay1zZWNyZXQtZm9yLXVuaXQ=';

describe('WebhookSender', () => {
  it('signs per Standard Webhooks so that the receiver verifies the raw body', async () => {
    const { port, received } = await receiver();
    const sender = new WebhookSender({
      timeoutMs: 2_000,
      networks: () => ({ allowPrivateNetworks: true, allowNetworks: [] }),
    });
    const outcome = await sender.send({
      url: `http://127.0.0.1:${port}/hook`,
      secret,
      messageId: 'msg_1',
      payload: '{"a":1}',
    });
    await sender.close();
    expect(outcome).toMatchObject({ kind: 'response', status: 204 });
    expect(webhookVerdict(outcome)).toBe('delivered');
    const [call] = received;
    expect(call?.headers['webhook-id']).toBe('msg_1');
    expect(new Webhook(secret).verify(call?.body ?? '', call?.headers ?? {})).toEqual({ a: 1 });
  });

  it('refuses loopback by address literal and by name, at connect time, unless private networks are allowed', async () => {
    const { port, received } = await receiver();
    const sender = new WebhookSender({
      timeoutMs: 2_000,
      networks: () => ({ allowPrivateNetworks: false, allowNetworks: [] }),
    });
    const literal = await sender.send({
      url: `http://127.0.0.1:${port}/hook`,
      secret,
      messageId: 'm',
      payload: '{}',
    });
    const byName = await sender.send({
      url: `http://localhost:${port}/hook`,
      secret,
      messageId: 'm',
      payload: '{}',
    });
    const mapped = await sender.send({
      url: `http://[::ffff:127.0.0.1]:${port}/hook`,
      secret,
      messageId: 'm',
      payload: '{}',
    });
    await sender.close();
    for (const outcome of [literal, byName, mapped]) {
      expect(outcome).toMatchObject({ kind: 'error', code: 'WEBHOOK_FORBIDDEN_ADDRESS', retryable: false });
      expect(webhookVerdict(outcome)).toBe('give-up');
    }
    expect(received).toHaveLength(0);
  });

  it('reaches a listed network by name, resolved when connecting', async () => {
    const { port, received } = await receiver();
    const sender = new WebhookSender({
      timeoutMs: 2_000,
      networks: () => ({ allowPrivateNetworks: false, allowNetworks: ['127.0.0.0/8', '::1/128'] }),
    });
    const outcome = await sender.send({
      url: `http://localhost:${port}/hook`,
      secret,
      messageId: 'm',
      payload: '{}',
    });
    await sender.close();
    expect(outcome).toMatchObject({ kind: 'response', status: 204 });
    expect(received).toHaveLength(1);
  });

  it('does not follow a redirect', async () => {
    const target = await receiver();
    const { port } = await receiver(302, { location: `http://127.0.0.1:${target.port}/elsewhere` });
    const sender = new WebhookSender({
      timeoutMs: 2_000,
      networks: () => ({ allowPrivateNetworks: true, allowNetworks: [] }),
    });
    const outcome = await sender.send({
      url: `http://127.0.0.1:${port}/hook`,
      secret,
      messageId: 'm',
      payload: '{}',
    });
    await sender.close();
    expect(outcome).toMatchObject({ kind: 'response', status: 302 });
    expect(webhookVerdict(outcome)).toBe('retry');
    expect(target.received).toHaveLength(0);
  });

  it('treats 410 Gone as final and other failures as worth another try', () => {
    const response = (status: number) => ({
      kind: 'response' as const,
      status,
      retryAfter: undefined,
      durationMs: 1,
    });
    expect(webhookVerdict(response(410))).toBe('give-up');
    expect(webhookVerdict(response(500))).toBe('retry');
    expect(webhookVerdict(response(429))).toBe('retry');
    expect(
      webhookVerdict({
        kind: 'error',
        code: 'WEBHOOK_ECONNREFUSED',
        message: '',
        retryable: true,
        durationMs: 1,
      }),
    ).toBe('retry');
  });
});
