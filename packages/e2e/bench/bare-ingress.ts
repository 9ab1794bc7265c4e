/**
 * The baseline of the ingress benchmark, and the first stage of the bare pipeline (`bare-pipeline.ts`): a bare
 * node:http server that takes POST /v1/requests and produces the same three records as the ingress (request,
 * queued status, batch announcement) with the same Kafka client, then answers 202. No Express, no authentication, validation or idempotency: what the ingress adds on top is
 * the difference the benchmark reports.
 */
import { createServer, type ServerResponse } from 'node:http';
import { codecs, isTerminal, newId } from '@sluice/contracts';
import { consumeEach, kafka, requestHeaders, topics } from './bare-stage.ts';

const producer = kafka.producer();
await producer.connect();

/**
 * With BARE_STATUS_FEED=1 (the bare pipeline) it reads the status topic as the ingress's status feed does, and a
 * request with `Prefer: wait` is answered 200 with its result once its terminal status is read.
 */
const held = new Map<string, ServerResponse>();
const statusFeed =
  process.env.BARE_STATUS_FEED === '1'
    ? await consumeEach(`bare-ingress-${process.pid}`, topics.status, async (records) => {
        for (const record of records) {
          const decoded = codecs.status.decode(record);
          if (!decoded.ok || !isTerminal(decoded.value.status)) continue;
          const res = held.get(decoded.value.id);
          if (res === undefined) continue;
          held.delete(decoded.value.id);
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(decoded.value));
        }
      })
    : undefined;

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const body = JSON.parse(Buffer.concat(chunks).toString()) as {
      route: string;
      method: string;
      path: string;
    };
    const id = newId();
    const now = Date.now();
    const headers = requestHeaders(id, 'acme');
    // Held before the send, so that a status read on another tick cannot come before its listener.
    const wait = statusFeed !== undefined && req.headers.prefer?.includes('wait') === true;
    if (wait) held.set(id, res);
    const request = codecs.request.encode({
      id,
      batchId: id,
      batchSize: 1,
      tenant: 'acme',
      route: body.route,
      method: body.method,
      path: body.path,
      query: {},
      headers: {},
      priority: 'normal',
      acceptedAt: now,
      deadlineAt: now + 86_400_000,
      attempts: [],
    });
    const status = codecs.status.encode({
      id,
      batchId: id,
      single: true,
      tenant: 'acme',
      route: body.route,
      status: 'queued',
      attempts: 0,
      timings: { acceptedAt: now },
      updatedAt: now,
    });
    const accepted = codecs.progress.encode({
      kind: 'accepted',
      batchId: id,
      tenant: 'acme',
      route: body.route,
      single: true,
      ids: [id],
      acceptedAt: now,
      deadlineAt: now + 86_400_000,
    });
    producer
      .send([
        {
          topic: topics.requests,
          key: id,
          value: request.value,
          headers: { ...request.headers, ...headers },
        },
        { topic: topics.status, key: id, value: status.value, headers: { ...status.headers, ...headers } },
        {
          topic: topics.results,
          key: id,
          value: accepted.value,
          headers: { ...accepted.headers, ...headers },
        },
      ])
      .then(
        () => {
          if (wait) return;
          res.writeHead(202, { 'content-type': 'application/json', location: `/v1/requests/${id}` });
          res.end(JSON.stringify({ id, status: 'queued', statusUrl: `/v1/requests/${id}` }));
        },
        () => {
          held.delete(id);
          res.writeHead(503);
          res.end();
        },
      );
  });
});
server.listen(Number(process.env.HTTP_PORT ?? 0), '127.0.0.1', () => {
  console.log(`bare ingress listening on ${JSON.stringify(server.address())}`);
});
process.once('SIGTERM', () => {
  server.close();
  void Promise.all([producer.close(), statusFeed?.close()]).then(() => process.exit(0));
});
