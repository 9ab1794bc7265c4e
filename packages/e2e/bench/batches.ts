import { waitFor } from '@sluice/testkit';
import type { Pool } from 'undici';

/**
 * Submits `count` requests in batches of `batchSize` (POST /v1/batches, all at once; a 429 or 503 is tried again
 * when its Retry-After says) and waits until every batch is completed. Times from the first submission, in ms.
 */
export async function completeInBatches(
  pool: Pool,
  auth: Record<string, string>,
  options: {
    count: number;
    batchSize: number;
    request: (batch: number, index: number) => { route: string; method: string; path: string };
  },
): Promise<{ submittedMs: number; completedMs: number }> {
  const batchIds: string[] = [];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.ceil(options.count / options.batchSize) }, async (_, b) => {
      const body = JSON.stringify({
        requests: Array.from({ length: options.batchSize }, (_, i) => options.request(b, i)),
      });
      for (;;) {
        const response = await pool.request({
          path: '/v1/batches',
          method: 'POST',
          headers: { 'content-type': 'application/json', ...auth },
          body,
        });
        const answer = (await response.body.json()) as { batchId?: string };
        if (response.statusCode === 202 && answer.batchId !== undefined) {
          batchIds.push(answer.batchId);
          return;
        }
        if (response.statusCode !== 429 && response.statusCode !== 503)
          throw new Error(`batch ${b}: ${response.statusCode} ${JSON.stringify(answer)}`);
        const retryAfter = Number(response.headers['retry-after'] ?? 1);
        await new Promise((resolve) => setTimeout(resolve, retryAfter * 1000));
      }
    }),
  );
  const submittedMs = performance.now() - started;
  await waitFor(
    'every batch to complete',
    async () => {
      for (const batchId of [...batchIds]) {
        const response = await pool.request({ path: `/v1/batches/${batchId}`, method: 'GET', headers: auth });
        const batch = (await response.body.json()) as { status: string };
        if (batch.status !== 'completed') return false;
        batchIds.splice(batchIds.indexOf(batchId), 1);
      }
      return true;
    },
    { timeoutMs: 600_000, intervalMs: 200 },
  );
  return { submittedMs, completedMs: performance.now() - started };
}
