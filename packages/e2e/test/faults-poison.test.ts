import { randomUUID } from 'node:crypto';
import { codecs, type DeadLetterMessage, recordHeaders, type TopicId } from '@sluice/contracts';
import { type ServiceProcess, waitFor } from '@sluice/testkit';
import { describe, expect, it } from 'vitest';
import { audit, describeAudit, type Expected } from '../src/audit.ts';
import { api, readTopic } from '../src/harness.ts';
import { stackPerFile } from '../src/stack-per-file.ts';
import { callsTo, ScriptedUpstream } from '../src/upstream.ts';

/**
 * Records nobody can read, produced straight onto every topic a service consumes, ahead of a real request's own
 * records in the same partitions (the same record keys). pipeline.test.ts covers two kinds on three topics; this
 * covers three kinds on all nine, and that the very partition the poison sits in keeps flowing.
 */
const upstream = new ScriptedUpstream();
const stack = stackPerFile(() => ({ upstream: upstream.handler }));

const token = () => randomUUID().slice(0, 8);

/** Three ways a record cannot be read, and the reason each must be dead-lettered for. */
const poisons = [
  {
    reason: 'undecodable',
    value: Buffer.from([0xff, 0xfe, 0x7b, 0x00, 0xc3]),
    headers: { [recordHeaders.schemaVersion]: '1' },
  },
  {
    reason: 'unsupported-schema',
    value: Buffer.from('{"id":"x"}'),
    headers: { [recordHeaders.schemaVersion]: '9' },
  },
  {
    reason: 'invalid-message',
    value: Buffer.from('{"hello":"world","kind":"finished"}'),
    headers: { [recordHeaders.schemaVersion]: '1' },
  },
] as const;

/** The consumed topics whose records are dead-lettered, and by whom. */
const deadLettering: Array<[Exclude<TopicId, 'deadLetters'>, ServiceProcess['name']]> = [
  ['requests', 'batch-worker'],
  ['requestsHigh', 'batch-worker'],
  ['requestsLow', 'batch-worker'],
  ['requestRetries', 'batch-worker'],
  ['results', 'aggregator'],
  ['completions', 'delivery'],
  ['webhookRetries', 'delivery'],
];

async function poison(topic: TopicId, key: string): Promise<void> {
  const producer = stack().kafka.producer();
  await producer.send(
    poisons.map((p) => ({ topic: stack().topic(topic), key, value: p.value, headers: p.headers })),
  );
  await producer.close();
}

describe('poison records on every consumed topic', () => {
  it('are dead-lettered (or, on the tables, logged and skipped) with their reason, and their partitions keep flowing', async () => {
    // A request whose first try is held at the upstream, then answered 503 (a retry record follows), whose
    // webhook is answered 503 once (a webhook retry record follows): its later records land behind the poison in
    // the partitions of the retry, results, status, batch-state, completions and webhook-retry topics.
    const hold = token();
    const hook = `/up/fail/${token()}/1`;
    const response = await api(stack(), '/v1/requests', {
      json: {
        route: 'e2e',
        method: 'GET',
        path: `/hold-fail/${hold}/1`,
        callback: { url: `${stack().upstream.url}${hook}` },
      },
    });
    expect(response.status).toBe(202);
    const held = (await response.json()) as { id: string };
    await waitFor(
      'the first try to be held',
      () => callsTo(stack().upstream.calls, `/up/hold-fail/${hold}`).length === 1,
    );
    const { batchId } = (await (await api(stack(), `/v1/requests/${held.id}`)).json()) as { batchId: string };

    // Keyed as each topic keys the held request's records; the lanes by an ordering key of their own.
    const lanesKey = `poison-${token()}`;
    const keys: Record<Exclude<TopicId, 'deadLetters'>, string> = {
      requests: lanesKey,
      requestsHigh: lanesKey,
      requestsLow: lanesKey,
      requestRetries: held.id,
      results: batchId,
      completions: batchId,
      webhookRetries: batchId,
      status: held.id,
      batchState: batchId,
    };
    for (const [topic] of deadLettering) await poison(topic, keys[topic]);
    await poison('status', keys.status);
    await poison('batchState', keys.batchState);

    upstream.release(hold);
    const requests = new Map<string, Expected>([
      [held.id, { status: 'succeeded', attempts: 2, httpStatus: 200 }],
    ]);
    for (const priority of ['high', 'normal', 'low']) {
      const lane = await api(stack(), '/v1/requests', {
        json: { route: 'e2e', method: 'GET', path: `/ok/${token()}`, key: lanesKey, priority },
      });
      expect(lane.status).toBe(202);
      requests.set(((await lane.json()) as { id: string }).id, { status: 'succeeded', attempts: 1 });
    }
    const report = await audit(stack(), {
      requests,
      requestCallbacks: new Map([[held.id, hook]]),
      receiver: stack().upstream,
      maxDuplicateCalls: 0,
      skipUnreadableStatuses: true,
    });
    console.log(describeAudit('poison', report));
    expect(report.problems).toEqual([]);
    // The webhook went through its retry topic: refused once, then delivered.
    expect(callsTo(stack().upstream.calls, hook)).toHaveLength(2);

    // Every poison record of the dead-lettering consumers is on the dead-letter topic, whole, with its reason.
    const letters = await waitFor('21 dead letters', async () => {
      const found: DeadLetterMessage[] = [];
      for (const record of await readTopic(stack().kafka, stack().topic('deadLetters'))) {
        const decoded = codecs.deadLetter.decode(record);
        if (!decoded.ok) throw new Error(`unreadable dead letter: ${decoded.detail}`);
        const key = Buffer.from(decoded.value.original.key ?? '', 'base64').toString();
        if (Object.values(keys).includes(key)) found.push(decoded.value);
      }
      return found.length >= deadLettering.length * poisons.length && found;
    });
    const seen = letters
      .map((letter) => ({
        topic: letter.original.topic,
        service: letter.service,
        reason: letter.reason,
        value: letter.original.value,
      }))
      .sort((a, b) => `${a.topic}${a.reason}`.localeCompare(`${b.topic}${b.reason}`));
    const wanted = deadLettering
      .flatMap(([topic, service]) =>
        poisons.map((p) => ({
          topic: stack().topic(topic),
          service,
          reason: p.reason,
          value: p.value.toString('base64'),
        })),
      )
      .sort((a, b) => `${a.topic}${a.reason}`.localeCompare(`${b.topic}${b.reason}`));
    expect(seen).toEqual(wanted);

    // The tables (status, batch state) are read whole by every instance and never dead-letter: the reader logs
    // each record it cannot read and goes on.
    for (const [service, message] of [
      ['ingress', 'unreadable record on the status topic'],
      ['aggregator', 'unreadable record on the batch-state changelog'],
    ] as const) {
      const lines = await waitFor(`the ${service} to log the three records`, () => {
        const found = stack()
          .services[service].output()
          .split('\n')
          .filter((line) => line.includes(message));
        return found.length >= poisons.length && found;
      });
      expect(
        lines.map((line) => (JSON.parse(line) as { detail: string }).detail.split(':')[0]).sort(),
      ).toEqual(poisons.map((p) => p.reason).sort());
    }
  });
});
