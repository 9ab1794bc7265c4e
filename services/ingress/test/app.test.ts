import type { AddressInfo } from 'node:net';
import { Readiness } from '@sluice/runtime';
import { afterEach, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.ts';

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

async function serve(readiness: Readiness): Promise<string> {
  const server = createApp({ readiness }).listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', resolve));
  close = () => new Promise((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('ingress operational endpoints', () => {
  it('answers /healthz while dependencies are not ready, and /readyz 503 naming the failing check', async () => {
    let producerConnected = false;
    const url = await serve(
      new Readiness().add({ name: 'kafkaProducerConnected', ready: () => producerConnected }),
    );
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const notReady = await fetch(`${url}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toMatchObject({ ready: false, checks: { kafkaProducerConnected: false } });
    producerConnected = true;
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
  });

  it('turns /readyz to 503 once shutdown starts', async () => {
    const readiness = new Readiness();
    const url = await serve(readiness);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    readiness.markShuttingDown();
    expect((await fetch(`${url}/readyz`)).status).toBe(503);
  });

  it('answers unknown paths with a problem document', async () => {
    const url = await serve(new Readiness());
    const response = await fetch(`${url}/v0/nothing`);
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toContain('application/problem+json');
    expect(await response.json()).toMatchObject({ status: 404, title: 'Not Found', instance: '/v0/nothing' });
  });
});
