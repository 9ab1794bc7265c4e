import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createHealthServer, type ExtraRoute, Readiness } from '../src/health.ts';

const servers: Server[] = [];

async function listen(readiness: Readiness, extraRoutes: ExtraRoute[] = []): Promise<string> {
  const server = createHealthServer(readiness, extraRoutes);
  servers.push(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return `http://127.0.0.1:${port}`;
}

afterEach(async () => {
  await Promise.all(
    servers.splice(0).map(
      (server) =>
        new Promise<void>((resolve, reject) => {
          server.close((error) => (error ? reject(error) : resolve()));
          server.closeAllConnections();
        }),
    ),
  );
});

describe('health server', () => {
  it('answers /healthz with 200 even when not ready', async () => {
    const readiness = new Readiness().add({ name: 'kafka', ready: () => false });
    readiness.markShuttingDown();
    const base = await listen(readiness);

    const response = await fetch(`${base}/healthz`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(await response.json()).toEqual({ status: 'ok' });
  });

  it('answers /readyz with 200 when every check passes', async () => {
    const readiness = new Readiness()
      .add({ name: 'producer', ready: () => true })
      .add({ name: 'consumer', ready: () => true })
      .info('configVersion', () => 'abc123');
    const base = await listen(readiness);

    const response = await fetch(`${base}/readyz`);
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(await response.json()).toEqual({
      status: 'ready',
      ready: true,
      checks: { producer: true, consumer: true, notShuttingDown: true },
      info: { configVersion: 'abc123' },
    });
  });

  it('answers /readyz with 503 naming the failing check, and recovers when it passes again', async () => {
    let consumerJoined = false;
    const readiness = new Readiness()
      .add({ name: 'producer', ready: () => true })
      .add({ name: 'consumer', ready: () => consumerJoined });
    const base = await listen(readiness);

    const failing = await fetch(`${base}/readyz?verbose=1`);
    expect(failing.status).toBe(503);
    expect(await failing.json()).toMatchObject({
      status: 'not ready',
      ready: false,
      checks: { producer: true, consumer: false },
    });

    consumerJoined = true;
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
  });

  it('answers /readyz with 503 once shutdown has started, even with every check passing', async () => {
    const readiness = new Readiness().add({ name: 'producer', ready: () => true });
    const base = await listen(readiness);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);

    readiness.markShuttingDown();
    const response = await fetch(`${base}/readyz`);
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({
      ready: false,
      checks: { producer: true, notShuttingDown: false },
    });
  });

  it('answers an unknown path with a 404 problem document', async () => {
    const base = await listen(new Readiness());

    const response = await fetch(`${base}/nope`);
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
    expect(await response.json()).toMatchObject({ status: 404, title: 'Not Found' });
  });

  it('serves an extra route and still answers 404 for paths no route takes', async () => {
    const metrics: ExtraRoute = (req, res) => {
      if (req.method !== 'GET' || req.url !== '/metrics') return false;
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end('sluice_up 1\n');
      return true;
    };
    const base = await listen(new Readiness(), [metrics]);

    const response = await fetch(`${base}/metrics`);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('sluice_up 1\n');
    expect((await fetch(`${base}/other`)).status).toBe(404);
  });
});
