/**
 * The bare pipeline: the limit beside each end-to-end figure of the open-loop benchmark. Three processes of the
 * same shape as Sluice's (ingress → requests → worker → results → aggregator → status → ingress), the same Kafka
 * client and settings, the same records encoded and validated by the same codecs, on topics of its own:
 *
 * - `bare-ingress.ts`: node:http; produces request, `queued` status and batch announcement, answers 202, or with
 *   `Prefer: wait` holds the answer until it reads the request's terminal status;
 * - `bare-worker.ts`: calls the upstream for each request, reports start and outcome on the results topic;
 * - `bare-aggregator.ts`: writes `processing` and the outcome as statuses.
 *
 * What it leaves out is what Sluice's cost buys: HTTP framework, authentication, validation of submissions,
 * idempotency and the state store, admission, tracing and metrics, retries, shaping and balancing, batch state
 * and its changelog, completions, the delivery service, dead letters.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { topicSpecifications } from '@sluice/contracts';
import { createKafkaClient, provisionTopics } from '@sluice/kafka';
import { freePort, uniqueName } from '@sluice/testkit';

/** Starts one bare stage (a script of this folder) and resolves once it printed its first line (ready). */
export function spawnStage(script: string, env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--conditions=sluice-source', join(import.meta.dirname, script)], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.stdout?.once('data', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`${script} exited ${code}`)));
  });
}

export interface BarePipeline {
  /** The bare ingress's base URL (POST /v1/requests). */
  url: string;
  /** The prefix of its topics. */
  prefix: string;
  pids: Record<'ingress' | 'worker' | 'aggregator', number>;
  stop(): Promise<void>;
}

export async function startBarePipeline(options: {
  brokers: string[];
  upstream: string;
  partitions: number;
}): Promise<BarePipeline> {
  const prefix = `${uniqueName('bare')}.`;
  const client = createKafkaClient('platformatic', { brokers: options.brokers, clientId: 'bare-provision' });
  const admin = client.admin();
  await provisionTopics(
    admin,
    topicSpecifications({ prefix, replicationFactor: 1, partitions: options.partitions }),
  );
  await admin.close();
  const env = {
    KAFKA_BROKERS: options.brokers.join(','),
    KAFKA_TOPIC_PREFIX: prefix,
    BARE_UPSTREAM: options.upstream,
    BARE_STATUS_FEED: '1',
  };
  const port = await freePort();
  const [ingress, worker, aggregator] = await Promise.all([
    spawnStage('bare-ingress.ts', { ...env, HTTP_PORT: String(port) }),
    spawnStage('bare-worker.ts', env),
    spawnStage('bare-aggregator.ts', env),
  ]);
  const children = { ingress, worker, aggregator };
  return {
    url: `http://127.0.0.1:${port}`,
    prefix,
    pids: {
      ingress: ingress.pid as number,
      worker: worker.pid as number,
      aggregator: aggregator.pid as number,
    },
    stop: async () => {
      await Promise.all(
        Object.values(children).map(
          (child) =>
            new Promise<void>((resolve) => {
              if (child.exitCode !== null) return resolve();
              child.once('exit', () => resolve());
              child.kill('SIGTERM');
            }),
        ),
      );
    },
  };
}
