import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { tryDeadline, UpstreamClient, upstreamUrl } from '../src/index.ts';

// The upstream runs on its own thread, so that it answers while the test's thread is deliberately stalled.
// flags[0]: answer written; flags[1]: request received; flags[2]: go ahead and answer.
const upstreamThread = `
const { createServer } = require('node:http');
const { parentPort, workerData } = require('node:worker_threads');
const flags = new Int32Array(workerData);
const server = createServer(async (req, res) => {
  req.resume();
  if (req.url.startsWith('/hang')) return;
  Atomics.store(flags, 1, 1);
  await Atomics.waitAsync(flags, 2, 0).value;
  res.end('in time', () => {
    Atomics.store(flags, 0, 1);
    Atomics.notify(flags, 0);
  });
});
server.listen(0, '127.0.0.1', () => parentPort.postMessage(server.address().port));
`;

const workers: Worker[] = [];
afterEach(async () => {
  for (const worker of workers.splice(0)) await worker.terminate();
});

async function threadedUpstream() {
  const flags = new Int32Array(new SharedArrayBuffer(3 * Int32Array.BYTES_PER_ELEMENT));
  const worker = new Worker(upstreamThread, { eval: true, workerData: flags.buffer });
  workers.push(worker);
  const port = await new Promise<number>((resolve) => worker.once('message', resolve));
  return { base: `http://127.0.0.1:${port}`, flags };
}

const callTo = (base: string, path: string, timeoutMs: number) => ({
  upstream: 'items',
  url: upstreamUrl(base, path, {}),
  method: 'GET',
  headers: {},
  timeoutMs,
  maxResponseBytes: 1_024,
  idempotencyKey: 'sluice-req-1',
});

/** Blocks this thread (timers, sockets, everything) for the given time, as a long GC pause or a busy core does. */
function stall(ms: number) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Math.max(0, ms));
}

describe('the deadline of one try', () => {
  it('lets an answer that arrived in time win when this process was too busy to read it before the limit', async () => {
    const { base, flags } = await threadedUpstream();
    const upstream = new UpstreamClient({ connections: () => 1 });
    const timeoutMs = 1_000;
    const started = performance.now();
    const outcome = upstream.call(callTo(base, '/answer', timeoutMs));
    // Yield until the request is on the upstream's side (polling with setImmediate, not sleeping).
    while (Atomics.load(flags, 1) === 0) await new Promise((resolve) => setImmediate(resolve));
    Atomics.store(flags, 2, 1);
    Atomics.notify(flags, 2);
    // The answer is written to the socket, then this thread stays blocked until after the try's limit.
    expect(Atomics.wait(flags, 0, 0, 30_000)).not.toBe('timed-out');
    const writtenAfterMs = performance.now() - started;
    stall(started + timeoutMs + 200 - performance.now());
    const result = await outcome;
    await upstream.close();
    expect(writtenAfterMs).toBeLessThan(timeoutMs);
    expect(result).toMatchObject({ kind: 'response', status: 200 });
    expect(result.kind === 'response' && result.body.toString()).toBe('in time');
  });

  it('still ends a try that gets no answer at all as UPSTREAM_TIMEOUT', async () => {
    const { base } = await threadedUpstream();
    const upstream = new UpstreamClient({ connections: () => 1 });
    const result = await upstream.call(callTo(base, '/hang', 300));
    await upstream.close();
    expect(result).toMatchObject({ kind: 'error', code: 'UPSTREAM_TIMEOUT' });
    expect(result.durationMs).toBeGreaterThanOrEqual(299);
  });

  it('aborts with the TimeoutError that AbortSignal.timeout gives, and never once cleared', async () => {
    const expiring = tryDeadline(20);
    await new Promise((resolve) => expiring.signal.addEventListener('abort', resolve));
    expect(expiring.signal.reason).toMatchObject({ name: 'TimeoutError' });

    const cleared = tryDeadline(20);
    cleared.clear();
    const later = tryDeadline(60);
    await new Promise((resolve) => later.signal.addEventListener('abort', resolve));
    expect(cleared.signal.aborted).toBe(false);
  });
});
