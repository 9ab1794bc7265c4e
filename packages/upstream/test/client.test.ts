import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { UpstreamClient, upstreamUrl } from '../src/index.ts';

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const server = createServer(handler);
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => sockets.add(socket));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, sockets };
}

const client = () => {
  const upstream = new UpstreamClient({ connections: () => 4 });
  return upstream;
};

const call = (base: string, overrides: Partial<Parameters<UpstreamClient['call']>[0]> = {}) => ({
  upstream: 'items',
  url: upstreamUrl(base, '/items', { q: 'x' }),
  method: 'POST',
  headers: { 'content-type': 'text/plain', connection: 'close', 'sluice-tenant': 'forged' },
  body: Buffer.from('hello'),
  timeoutMs: 2_000,
  maxResponseBytes: 1_024,
  idempotencyKey: 'sluice-req-1',
  ...overrides,
});

describe('UpstreamClient against real HTTP servers', () => {
  it('sends the request with an Idempotency-Key and no forged or hop-by-hop headers, and reads the answer', async () => {
    let seen: { url?: string; headers?: IncomingMessage['headers']; body?: string } = {};
    const { base } = await serve((req, res) => {
      let body = '';
      req.on('data', (chunk) => {
        body += chunk;
      });
      req.on('end', () => {
        seen = { url: req.url ?? '', headers: req.headers, body };
        res.writeHead(201, { 'content-type': 'application/json', 'x-upstream': 'yes' });
        res.end('{"ok":true}');
      });
    });
    const upstream = client();
    const outcome = await upstream.call(call(base));
    await upstream.close();
    expect(outcome).toMatchObject({ kind: 'response', status: 201, headers: { 'x-upstream': 'yes' } });
    expect(outcome.kind === 'response' && outcome.body.toString()).toBe('{"ok":true}');
    expect(seen.url).toBe('/items?q=x');
    expect(seen.body).toBe('hello');
    expect(seen.headers?.['idempotency-key']).toBe('sluice-req-1');
    expect(seen.headers?.['sluice-tenant']).toBeUndefined();
    expect(seen.headers?.connection).not.toBe('close');
  });

  it('reuses keep-alive connections across calls', async () => {
    const { base, sockets } = await serve((req, res) => {
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    const upstream = client();
    for (let i = 0; i < 20; i += 1) await upstream.call(call(base));
    await upstream.close();
    // The pool may open a second connection while the first is still being released; never one per call.
    expect(sockets.size).toBeLessThanOrEqual(2);
  });

  it('ends a try that gets no answer within the timeout as UPSTREAM_TIMEOUT', async () => {
    const { base } = await serve(() => {
      // Accepts the connection and never answers.
    });
    const upstream = client();
    const outcome = await upstream.call(call(base, { timeoutMs: 200 }));
    await upstream.close();
    expect(outcome).toMatchObject({ kind: 'error', code: 'UPSTREAM_TIMEOUT' });
    expect(outcome.durationMs).toBeGreaterThanOrEqual(150);
  });

  it('reports a refused connection as UPSTREAM_CONNECT and a reset one as UPSTREAM_RESET', async () => {
    const { base: closedBase } = await serve(() => {});
    const closed = servers.pop();
    await new Promise((resolve) => closed?.close(resolve));
    const { base: resetBase } = await serve((req) => req.socket.destroy());
    const upstream = client();
    expect(await upstream.call(call(closedBase))).toMatchObject({ kind: 'error', code: 'UPSTREAM_CONNECT' });
    expect(await upstream.call(call(resetBase))).toMatchObject({ kind: 'error', code: 'UPSTREAM_RESET' });
    await upstream.close();
  });

  it('stops reading an answer larger than the limit', async () => {
    const { base } = await serve((_req, res) => res.end(Buffer.alloc(64 * 1024, 1)));
    const upstream = client();
    const outcome = await upstream.call(call(base, { maxResponseBytes: 1_024 }));
    await upstream.close();
    expect(outcome).toMatchObject({ kind: 'error', code: 'UPSTREAM_RESPONSE_TOO_LARGE' });
  });
});

describe('HTTP/2 upstreams', () => {
  it('speaks HTTP/2 with prior knowledge to a cleartext h2c target', async () => {
    const { createServer: createH2Server } = await import('node:http2');
    const versions: string[] = [];
    const server = createH2Server((req, res) => {
      versions.push(req.httpVersion);
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`h${req.httpVersion}`);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const upstream = new UpstreamClient({ connections: () => 8, protocol: () => 'http2' });
    try {
      const outcomes = await Promise.all(
        Array.from({ length: 5 }, () =>
          upstream.call({ ...call(`http://127.0.0.1:${port}`), headers: {}, body: undefined, method: 'GET' }),
        ),
      );
      for (const outcome of outcomes) {
        expect(outcome).toMatchObject({ kind: 'response', status: 200 });
        expect(outcome.kind === 'response' && outcome.body.toString()).toBe('h2.0');
      }
      expect(versions).toEqual(['2.0', '2.0', '2.0', '2.0', '2.0']);
    } finally {
      await upstream.close();
      server.close();
    }
  });
});
