import { isTerminal, type StatusMessage } from '@sluice/contracts';
import type { Request, Response } from 'express';
import { batchDocument, type Lookups, statusDocument } from './lookups.ts';

interface BatchEventsOptions {
  batchId: string;
  tenant: string;
  initial: StatusMessage[];
  lookups: Lookups;
  shutdownSignal: AbortSignal;
}

/**
 * GET /v1/batches/{id}/events: Server-Sent Events of a batch's progress. A `progress` event with the counts
 * first and after every change, an `item` event per request status change, and `completed` with the final
 * counts when every request is terminal; then the stream ends. A comment every 15 s keeps proxies from idling
 * the connection out.
 */
export function batchEvents(req: Request, res: Response, options: BatchEventsOptions): void {
  const { batchId } = options;
  const latest = new Map(options.initial.map((status) => [status.id, status]));
  res.status(200).set({
    'content-type': 'text/event-stream',
    'cache-control': 'no-store',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  res.flushHeaders();
  let sequence = 0;
  const send = (event: string, data: unknown) => {
    sequence += 1;
    res.write(`id: ${sequence}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  const summary = () => {
    const document = batchDocument(batchId, [...latest.values()]);
    return { batchId, status: document.status, total: document.total, counts: document.counts };
  };
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
  const apply = (status: StatusMessage) => {
    if (ended) return;
    const previous = latest.get(status.id);
    if (previous?.status === status.status && previous.updatedAt === status.updatedAt) return;
    latest.set(status.id, status);
    send('item', statusDocument(status));
    send('progress', summary());
    if ([...latest.values()].every((s) => isTerminal(s.status))) end(true);
  };
  const unsubscribe = options.lookups.subscribeBatch(batchId, apply);
  let ended = false;
  const end = (completed: boolean) => {
    if (ended) return;
    ended = true;
    clearInterval(heartbeat);
    unsubscribe();
    options.shutdownSignal.removeEventListener('abort', onShutdown);
    if (completed) send('completed', summary());
    res.end();
  };
  const onShutdown = () => end(false);
  options.shutdownSignal.addEventListener('abort', onShutdown, { once: true });
  req.socket.once('close', () => end(false));
  send('progress', summary());
  if ([...latest.values()].every((s) => isTerminal(s.status))) {
    end(true);
    return;
  }
  // Changes between the caller's read and the subscription would otherwise be missed.
  options.lookups.batch(options.tenant, batchId).then(
    (statuses) => {
      for (const status of statuses ?? []) apply(status);
    },
    // The store cannot answer now: later changes still arrive through the subscription.
    () => {},
  );
}
