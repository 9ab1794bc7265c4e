import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AuditReport, audit, describeAudit, type Expected } from '../src/audit.ts';
import { api } from '../src/harness.ts';
import { stackPerFile } from '../src/stack-per-file.ts';
import { callsTo, ScriptedUpstream, type SilentServer, startSilentServer } from '../src/upstream.ts';

/**
 * Upstreams misbehaving as real ones do: too slow, resetting connections in the middle of an answer, failing all
 * at once and recovering, and accepting connections without ever answering. Every request must end with the
 * status and error its tries deserve, and the audit must hold. How long each took is printed, not asserted: a
 * request that never ended fails the audit, which waits for every one, and durations measure the machine.
 */
const upstream = new ScriptedUpstream();
let silent: SilentServer;
beforeAll(async () => {
  silent = await startSilentServer();
});
afterAll(async () => {
  await silent?.close();
});
const stack = stackPerFile(() => ({
  upstream: upstream.handler,
  routes: {
    'e2e-silent': `    upstream:
      targets: [{ url: "${silent.url}" }]
      circuitBreaker: { failureThreshold: 100000 }
      outlierDetection: { consecutiveFailures: 100000 }
    timeoutMs: 300
    retry: { maxAttempts: 2, baseDelayMs: 50, maxDelayMs: 100 }`,
  },
}));

const token = () => randomUUID().slice(0, 8);

/** Submits requests one by one (a few at a time), each as `[route, path, expected]`; returns id → expected. */
async function submitAll(requests: Array<[string, string, Expected]>): Promise<Map<string, Expected>> {
  const expected = new Map<string, Expected>();
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < requests.length) {
        const [route, path, wanted] = requests[next] as [string, string, Expected];
        next += 1;
        const response = await api(stack(), '/v1/requests', { json: { route, method: 'GET', path } });
        expect(response.status).toBe(202);
        expected.set(((await response.json()) as { id: string }).id, wanted);
      }
    }),
  );
  return expected;
}

/** The longest time from acceptance to the end among the audited requests, for the log. */
function slowest(report: AuditReport): number {
  let max = 0;
  for (const status of report.statuses.values()) {
    max = Math.max(max, (status.timings.finishedAt ?? status.updatedAt) - status.timings.acceptedAt);
  }
  return max;
}

const times = <T>(n: number, make: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => make(i));

describe('upstream faults', () => {
  it('answers slower than the route timeout: a timed-out try is tried again, and a request never answered in time dies', async () => {
    const run = token();
    // e2e-slow: 2 s per try, 2 tries. /lag never answers its first call, then answers at once; /hang never answers.
    // Neither depends on how fast the machine is: a try either gets no answer at all or an immediate one.
    const requests = await submitAll([
      ...times(40, (i): [string, string, Expected] => [
        'e2e-slow',
        `/lag/${run}-${i}/1`,
        { status: 'succeeded', attempts: 2, httpStatus: 200 },
      ]),
      ...times(20, (i): [string, string, Expected] => [
        'e2e-slow',
        `/hang/${run}-${i}`,
        { status: 'dead', attempts: 2, errorCode: 'UPSTREAM_TIMEOUT', deadLetter: 'retries-exhausted' },
      ]),
    ]);
    const report = await audit(stack(), { requests, maxDuplicateCalls: 0 });
    console.log(`${describeAudit('slow upstream', report)}; slowest request ${slowest(report)} ms`);
    expect(report.problems).toEqual([]);
    // Every lag request was called twice (the unanswered try, then the answered one); a hang request twice too.
    const calls = (prefix: string) => callsTo(stack().upstream.calls, `/up/${prefix}/${run}-`).length;
    expect({ lag: calls('lag'), hang: calls('hang') }).toEqual({ lag: 80, hang: 40 });
  });

  it('resets connections in the middle of an answer: tried again, and dead with UPSTREAM_RESET when it never stops', async () => {
    const run = token();
    // e2e: 4 tries. /reset sends the headers and half of the body, then destroys the socket, for its first n calls.
    const requests = await submitAll([
      ...times(40, (i): [string, string, Expected] => [
        'e2e',
        `/reset/${run}-${i}/1`,
        { status: 'succeeded', attempts: 2, httpStatus: 200 },
      ]),
      ...times(10, (i): [string, string, Expected] => [
        'e2e',
        `/reset/${run}-x${i}/1000`,
        { status: 'dead', attempts: 4, errorCode: 'UPSTREAM_RESET', deadLetter: 'retries-exhausted' },
      ]),
    ]);
    const report = await audit(stack(), { requests, maxDuplicateCalls: 0 });
    console.log(`${describeAudit('connection resets', report)}; slowest request ${slowest(report)} ms`);
    expect(report.problems).toEqual([]);
  });

  it('fails with a storm of 503s and recovers: each request ends as its own tries went', async () => {
    // 100 requests share one token: the first 150 calls among them answer 503, every later one 200. Which requests
    // run out of their 4 tries depends on the interleaving, so each is checked against what it was answered.
    const storm = token();
    const requests = await submitAll(
      times(100, (): [string, string, Expected] => ['e2e', `/fail/${storm}/150`, {}]),
    );
    const report = await audit(stack(), { requests, maxDuplicateCalls: 0 });
    const answered = [...requests.keys()].map((id) => upstream.answers.get(id) ?? []);
    const unavailable = answered.flat().filter((answer) => answer === 503).length;
    console.log(
      `${describeAudit('503 storm', report)}; ${unavailable} answers were 503; slowest request ${slowest(report)} ms`,
    );
    expect(report.problems).toEqual([]);
    expect(unavailable).toBe(150);
    for (const [id, status] of report.statuses) {
      const answers = upstream.answers.get(id) ?? [];
      expect({ id, attempts: status.attempts }).toEqual({ id, attempts: answers.length });
      if (answers.at(-1) === 200) {
        expect({ id, status: status.status, result: status.result?.status }).toEqual({
          id,
          status: 'succeeded',
          result: 200,
        });
      } else {
        expect({ id, status: status.status, answers, result: status.result?.status }).toEqual({
          id,
          status: 'dead',
          answers: [503, 503, 503, 503],
          result: 503,
        });
      }
    }
  });

  it('accepts connections and never answers: each try times out, and the request dies with UPSTREAM_TIMEOUT', async () => {
    const requests = await submitAll(
      times(20, (i): [string, string, Expected] => [
        'e2e-silent',
        `/silent/${i}`,
        { status: 'dead', attempts: 2, errorCode: 'UPSTREAM_TIMEOUT', deadLetter: 'retries-exhausted' },
      ]),
    );
    const report = await audit(stack(), {
      requests,
      maxDuplicateCalls: 0,
      upstreamCallIds: () => silent.requestIds(),
    });
    console.log(`${describeAudit('silent target', report)}; slowest request ${slowest(report)} ms`);
    expect(report.problems).toEqual([]);
    expect(report.upstreamCalls).toBe(40);
  });
});
