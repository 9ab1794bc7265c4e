import { waitFor } from '@sluice/testkit';
import { describe, expect, it } from 'vitest';
import { api, terminalStatusOf } from '../src/harness.ts';
import { stackPerFile } from '../src/stack-per-file.ts';
import { ScriptedUpstream } from '../src/upstream.ts';

const upstream = new ScriptedUpstream();
const stack = stackPerFile(() => ({ upstream: upstream.handler }));

async function workerMetric(name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${stack().services['batch-worker'].url}/metrics`)).text();
  const line =
    text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels)) ??
    text.split('\n').find((l) => l.startsWith(`${name} `));
  return Number(line?.split(' ').at(-1) ?? 0);
}

describe('an upstream that goes down', () => {
  it('pauses consumption instead of burning attempts, probes, and resumes when the probe succeeds', async () => {
    upstream.fragileDown = true;
    const fragileCalls = () => stack().upstream.calls.filter((c) => c.path.startsWith('/fragile')).length;
    const ids: string[] = [];
    for (let i = 0; i < 20; i += 1) {
      const response = await api(stack(), '/v1/requests', {
        json: { route: 'e2e-fragile', method: 'GET', path: `/item/${i}` },
      });
      ids.push(((await response.json()) as { id: string }).id);
    }
    await waitFor('the breaker to open and the partitions to pause', async () => {
      const open = await workerMetric('sluice_upstream_circuit_state', 'state="open"');
      const paused = await workerMetric('sluice_consumer_partitions_paused');
      return open === 1 && paused >= 1;
    });
    const callsWhenOpen = fragileCalls();
    // While it is down, only one probe per open period (500 ms) reaches it, not 20 requests' retries. The spacing
    // is read from the upstream's own arrival times, not from when this test noticed the breaker open.
    await waitFor('two probes', () => fragileCalls() >= callsWhenOpen + 2, { timeoutMs: 10_000 });
    const [first, second] = stack()
      .upstream.calls.filter((c) => c.path.startsWith('/fragile'))
      .slice(callsWhenOpen, callsWhenOpen + 2);
    // 500 ms less a margin for when each arrival was recorded, which can only be late.
    expect((second?.at ?? 0) - (first?.at ?? 0)).toBeGreaterThanOrEqual(400);
    upstream.fragileDown = false;
    for (const id of ids) {
      const done = await terminalStatusOf(stack(), id);
      expect(done.status).toBe('succeeded');
      expect(done.attempts).toBeLessThanOrEqual(10);
    }
    expect(fragileCalls()).toBeLessThan(20 * 4);
    await waitFor(
      'the partitions to resume',
      async () => (await workerMetric('sluice_consumer_partitions_paused')) === 0,
    );
  });
});
