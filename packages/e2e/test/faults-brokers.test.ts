import { randomUUID } from 'node:crypto';
import { tenantResultTopicName, topicDeclarations, topicName } from '@sluice/contracts';
import { type KafkaHandle, startKafka, waitFor } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { audit, committedOffsets, describeAudit, type Expected, uncommittedWindow } from '../src/audit.ts';
import { api } from '../src/harness.ts';
import { stackPerFile } from '../src/stack-per-file.ts';
import { ScriptedUpstream } from '../src/upstream.ts';

/**
 * A replicated cluster losing a broker: this file runs its own three KRaft nodes (the run's shared broker has no
 * replicas to fail over to), with every topic replicated three times and min.insync.replicas=2, so that acks=all
 * producers keep writing while one broker is away.
 */
const upstream = new ScriptedUpstream();
let cluster: KafkaHandle;
beforeAll(async () => {
  cluster = await startKafka({ brokers: 3, forceJvm: true });
}, 240_000);
afterAll(async () => {
  await cluster?.stop();
});
const stack = stackPerFile(
  () => ({
    brokers: cluster.bootstrap,
    upstream: upstream.handler,
    env: { KAFKA_REPLICATION_FACTOR: '3', KAFKA_TOPIC_PARTITIONS: '3' },
  }),
  300_000,
);

describe('a three-broker cluster', () => {
  it('replicates every topic three times with min.insync.replicas=2', async () => {
    const names = [
      ...Object.keys(topicDeclarations).map((id) =>
        topicName(id as keyof typeof topicDeclarations, stack().prefix),
      ),
      tenantResultTopicName('acme', stack().prefix),
    ];
    const admin = stack().kafka.admin();
    const topics = await admin.describeTopics(names);
    await admin.close();
    expect(topics.map((topic) => topic.name).sort()).toEqual([...names].sort());
    for (const topic of topics) {
      expect({
        topic: topic.name,
        replicas: topic.replicationFactor,
        minIsr: topic.config['min.insync.replicas'],
      }).toEqual({ topic: topic.name, replicas: 3, minIsr: '2' });
    }
  });

  it('loses no accepted request when a broker is killed under load and comes back later', async () => {
    const run = randomUUID().slice(0, 8);
    const hooks = `/hooks/${run}`;
    const accepted: string[] = [];
    const refused: string[] = [];
    const refusedPaths: string[] = [];
    // Eight clients submitting one request after another, each with its own callback, up to a target count that
    // the test raises phase by phase (the load is paced by the phases, not by time).
    let submitted = 0;
    let target = 0;
    let done = false;
    const waiting = new Set<() => void>();
    const raise = (to: number) => {
      target = to;
      for (const wake of waiting) wake();
      waiting.clear();
    };
    const clients = Array.from({ length: 8 }, async () => {
      while (!done) {
        if (submitted >= target) {
          await new Promise<void>((resolve) => waiting.add(resolve));
          continue;
        }
        const i = submitted;
        submitted += 1;
        const response = await api(stack(), '/v1/requests', {
          json: {
            route: 'e2e',
            method: 'GET',
            path: `/slow/${run}-${i}/50`,
            callback: { url: `${stack().receiver.url}${hooks}` },
          },
        });
        if (response.status === 202) accepted.push(((await response.json()) as { id: string }).id);
        else {
          const problem = (await response.json()) as { type?: string };
          refused.push(
            `${response.status} ${problem.type} retry-after=${response.headers.get('retry-after')}`,
          );
          refusedPaths.push(`/up/slow/${run}-${i}/50`);
        }
      }
    });
    const settled = () => accepted.length + refused.length;
    const phase = async (to: number) => {
      raise(to);
      await waitFor(`${to} submissions answered`, () => settled() >= to, { timeoutMs: 60_000 });
    };

    await phase(100);
    const killed = 1;
    // Committed offsets only move forward: whatever the batch-workers read again after the failover starts at or
    // after these, read just before the kill.
    const committed = await committedOffsets(stack(), 'batchWorker', ['requests']);
    await cluster.killBroker(killed);
    const killedAt = Date.now();
    await phase(200);
    const restartStarted = Date.now();
    await cluster.restartBroker(killed);
    const restartMs = Date.now() - restartStarted;
    await phase(300);
    done = true;
    raise(300);
    await Promise.all(clients);

    const window = await uncommittedWindow(stack(), ['requests'], committed);
    const report = await audit(stack(), {
      requests: new Map(accepted.map((id): [string, Expected] => [id, { status: 'succeeded', attempts: 1 }])),
      requestCallbacks: new Map(accepted.map((id) => [id, hooks])),
      // Consumers whose group coordinator or partition leaders move may read again from their committed offsets:
      // only work not yet committed when the broker died may be repeated.
      maxDuplicateCalls: window.size,
      duplicateWindow: window,
    });
    const endedMs = Date.now() - killedAt;
    // How long the requests took to end (accepted → terminal status written), and where the slowest waited.
    const statuses = [...report.statuses.values()];
    const lastEnded = Math.max(...statuses.map((status) => status.updatedAt)) - killedAt;
    const slowest = statuses.reduce((a, b) =>
      b.updatedAt - b.timings.acceptedAt > a.updatedAt - a.timings.acceptedAt ? b : a,
    );
    const { acceptedAt, startedAt = acceptedAt, finishedAt = startedAt } = slowest.timings;
    console.log(
      `${describeAudit('broker SIGKILL', report)}; 100 submitted before the kill, 100 while broker ${killed} was ` +
        `down, 100 after it restarted (in ${restartMs} ms); ${accepted.length} accepted, refused: ` +
        `${refused.length} (${[...new Set(refused)].join('; ') || 'none'}); ${window.size} requests were past the committed offsets just before the kill; ` +
        `the last ended ${lastEnded} ms after the kill; the slowest, accepted ${acceptedAt - killedAt} ms ` +
        `after it, waited ${startedAt - acceptedAt} ms for a worker, ${finishedAt - startedAt} ms for the upstream ` +
        `and ${slowest.updatedAt - finishedAt} ms for its status; audited after ${endedMs} ms`,
    );
    expect(report.problems).toEqual([]);
    // Two of three replicas keep every partition writable once the dead broker's partitions have new leaders;
    // until then a submission may be refused, cleanly: 503 with Retry-After, nothing accepted.
    for (const refusal of refused)
      expect(refusal).toMatch(/^503 urn:sluice:problem:[a-z-]+ retry-after=\d+$/);
    expect(accepted.length).toBeGreaterThanOrEqual(270);
    // "Nothing was accepted" holds: no refused submission reached the upstream.
    expect(stack().upstream.calls.filter((call) => refusedPaths.includes(call.path))).toEqual([]);
  });
});
