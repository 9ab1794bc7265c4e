/**
 * The bare pipeline's worker: consumes requests, reports the start of each call, calls the upstream (undici, a
 * keep-alive pool, as the batch-worker does) and reports the outcome on the results topic. Every record of a
 * partition's batch is called at once; the batch commits when all are reported.
 */
import { codecs } from '@sluice/contracts';
import { Pool } from 'undici';
import { consumeEach, kafka, ready, requestHeaders, topics } from './bare-stage.ts';

const upstream = new Pool(process.env.BARE_UPSTREAM ?? '', { connections: 256 });
const producer = kafka.producer();
await producer.connect();

const consumer = await consumeEach('bare-worker', topics.requests, async (records) => {
  await Promise.all(
    records.map(async (record) => {
      const decoded = codecs.request.decode(record);
      if (!decoded.ok) return;
      const request = decoded.value;
      const ref = {
        id: request.id,
        batchId: request.batchId,
        tenant: request.tenant,
        route: request.route,
        acceptedAt: request.acceptedAt,
      };
      const headers = requestHeaders(request.id, request.tenant, request.batchId);
      const startedAt = Date.now();
      const started = codecs.progress.encode({ kind: 'started', ...ref, startedAt });
      const reported = producer.send([
        {
          topic: topics.results,
          key: request.batchId,
          value: started.value,
          headers: { ...started.headers, ...headers },
        },
      ]);
      const answer = await upstream.request({ method: 'GET', path: request.path });
      const body = await answer.body.text();
      const finishedAt = Date.now();
      const finished = codecs.progress.encode({
        kind: 'finished',
        ...ref,
        status: 'succeeded',
        attempts: [{ number: 1, startedAt, durationMs: finishedAt - startedAt, status: answer.statusCode }],
        result: { status: answer.statusCode, headers: {}, body },
        startedAt,
        finishedAt,
      });
      await Promise.all([
        reported,
        producer.send([
          {
            topic: topics.results,
            key: request.batchId,
            value: finished.value,
            headers: { ...finished.headers, ...headers },
          },
        ]),
      ]);
    }),
  );
});

ready('bare worker', async () => {
  await consumer.close();
  await Promise.all([producer.close(), upstream.close()]);
});
