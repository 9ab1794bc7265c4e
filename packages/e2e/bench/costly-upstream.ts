import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * An upstream whose cost is per call: it serves `slots` calls at once, each taking `perCallMs` plus `perItemMs` per
 * item (the shape of a backend with a fixed overhead per call: a transaction, a round trip to its own database).
 * A call below `/batch` carries a JSON array of items and is answered with one `{ ok: true }` per item; any other
 * call is one item.
 */
export async function costlyUpstream(options: { slots: number; perCallMs: number; perItemMs: number }) {
  let busy = 0;
  const queue: Array<() => void> = [];
  const slot = () =>
    new Promise<void>((resolve) => {
      if (busy < options.slots) {
        busy += 1;
        resolve();
      } else {
        queue.push(() => {
          busy += 1;
          resolve();
        });
      }
    });
  const free = () => {
    busy -= 1;
    queue.shift()?.();
  };
  let calls = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', async () => {
      calls += 1;
      const batch = req.url?.startsWith('/batch') ? (JSON.parse(body) as unknown[]) : undefined;
      await slot();
      setTimeout(
        () => {
          free();
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(batch === undefined ? { ok: true } : batch.map(() => ({ ok: true }))));
        },
        options.perCallMs + options.perItemMs * (batch?.length ?? 1),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls: () => calls,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}
