/**
 * The baseline of the ingress benchmark: a bare node:http server that takes POST /v1/requests and produces the
 * same three records as the ingress (request, queued status, batch announcement) with the same Kafka client,
 * then answers 202. No Express, no authentication, validation or idempotency: what the ingress adds on top is
 * the difference the benchmark reports.
 */
import { createServer } from 'node:http';
import { codecs, newId, recordHeaders, topicName } from '@sluice/contracts';
import { createKafkaClient, type KafkaAdapterName } from '@sluice/kafka';

const prefix = process.env.KAFKA_TOPIC_PREFIX ?? '';
const kafka = createKafkaClient((process.env.KAFKA_CLIENT ?? 'platformatic') as KafkaAdapterName, {
  brokers: (process.env.KAFKA_BROKERS ?? '').split(','),
  clientId: 'bare-ingress',
});
const producer = kafka.producer();
await producer.connect();
const topics = {
  requests: topicName('requests', prefix),
  status: topicName('status', prefix),
  results: topicName('results', prefix),
};

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
    const headers = {
      [recordHeaders.requestId]: id,
      [recordHeaders.batchId]: id,
      [recordHeaders.tenant]: 'acme',
    };
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
          res.writeHead(202, { 'content-type': 'application/json', location: `/v1/requests/${id}` });
          res.end(JSON.stringify({ id, status: 'queued', statusUrl: `/v1/requests/${id}` }));
        },
        () => {
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
  void producer.close().then(() => process.exit(0));
});
