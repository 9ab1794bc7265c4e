/**
 * The bare pipeline's aggregator: turns each result into the request's status (`processing` on its start, the
 * outcome when it finished), as the aggregator does, without batch state, changelog, completions or webhooks.
 */
import { codecs, type StatusMessage } from '@sluice/contracts';
import { consumeEach, kafka, ready, requestHeaders, topics } from './bare-stage.ts';

const producer = kafka.producer();
await producer.connect();

const consumer = await consumeEach('bare-aggregator', topics.results, async (records) => {
  const statuses: StatusMessage[] = [];
  for (const record of records) {
    const decoded = codecs.progress.decode(record);
    if (!decoded.ok || decoded.value.kind === 'accepted') continue;
    const progress = decoded.value;
    const common = {
      id: progress.id,
      batchId: progress.batchId,
      single: true,
      tenant: progress.tenant,
      route: progress.route,
      updatedAt: Date.now(),
    };
    statuses.push(
      progress.kind === 'started'
        ? {
            ...common,
            status: 'processing',
            attempts: 0,
            timings: { acceptedAt: progress.acceptedAt, startedAt: progress.startedAt },
          }
        : {
            ...common,
            status: progress.status,
            attempts: progress.attempts.length,
            ...(progress.result === undefined ? {} : { result: progress.result }),
            timings: {
              acceptedAt: progress.acceptedAt,
              finishedAt: progress.finishedAt,
              ...(progress.startedAt === undefined ? {} : { startedAt: progress.startedAt }),
            },
          },
    );
  }
  if (statuses.length === 0) return;
  await producer.send(
    statuses.map((status) => {
      const encoded = codecs.status.encode(status);
      return {
        topic: topics.status,
        key: status.id,
        value: encoded.value,
        headers: { ...encoded.headers, ...requestHeaders(status.id, status.tenant, status.batchId) },
      };
    }),
  );
});

ready('bare aggregator', async () => {
  await consumer.close();
  await producer.close();
});
