import { echo, startKafka } from '@sluice/testkit';
import { startStack, tenantKeys } from '../src/harness.ts';
import { answeringNginx } from './nginx.ts';
import type { Target } from './vegeta.ts';

/** How clients use Sluice, as the open-loop benchmark and `pnpm profile` load it. */
export const loadModes = ['accept', 'wait', 'transparent', 'direct'] as const;
export type LoadMode = (typeof loadModes)[number];

/** The routes the loads use: one queued, one direct, both to `upstream` (nginx answering at once). */
export const benchRoutes = (upstream: string) => ({
  bench: `    upstream: { targets: [{ url: "${upstream}" }] }
    concurrency: 256`,
  'bench-direct': `    mode: direct
    concurrency: 512
    upstream: { targets: [{ url: "${upstream}" }] }`,
});

/** Each mode's request against an ingress, and the status that counts as its success. */
export function loadTargets(ingress: string): Record<LoadMode, { target: Target; okStatus: number }> {
  const auth = { authorization: `Bearer ${tenantKeys.acme}`, 'content-type': 'application/json' };
  const submission = JSON.stringify({ route: 'bench', method: 'GET', path: '/item' });
  const submit = { method: 'POST', url: `${ingress}/v1/requests`, headers: auth, body: submission };
  return {
    // POST /v1/requests, answered 202 once the broker has the request.
    accept: { target: submit, okStatus: 202 },
    // The same, holding the connection until the result is there (200 with it).
    wait: { target: { ...submit, headers: { ...auth, prefer: 'wait=10' } }, okStatus: 200 },
    // The transparent form: the upstream's path below /r/<queued route>, answered 202.
    transparent: {
      target: { method: 'POST', url: `${ingress}/r/bench/item`, headers: auth, body: '{"sku":"a-1"}' },
      okStatus: 202,
    },
    // A mode: direct route, proxied at once.
    direct: {
      target: { method: 'GET', url: `${ingress}/r/bench-direct/item`, headers: auth },
      okStatus: 200,
    },
  };
}

/** The bare pipeline's counterparts of accept and wait (`bare-pipeline.ts`): the same body, no key needed. */
export function bareTargets(
  url: string,
): Record<'bare-accept' | 'bare-wait', { target: Target; okStatus: number }> {
  const submit = {
    method: 'POST',
    url: `${url}/v1/requests`,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ route: 'bench', method: 'GET', path: '/item' }),
  };
  return {
    'bare-accept': { target: submit, okStatus: 202 },
    'bare-wait': { target: { ...submit, headers: { ...submit.headers, prefer: 'wait=10' } }, okStatus: 200 },
  };
}

/**
 * What the load benchmarks run against: nginx answering at once as the upstream of the bench routes, a broker of
 * the test kit's own (JVM, so that its CPU can be costed) and the four services on it with 6 partitions.
 */
export async function startLoadStack(env: Record<string, string> = {}, gatewayYaml?: string) {
  const nginx = await answeringNginx();
  const kafka = await startKafka({ forceJvm: true });
  const stack = await startStack({
    brokers: kafka.bootstrap,
    upstream: echo,
    env: { KAFKA_TOPIC_PARTITIONS: '6', LOG_LEVEL: 'warn', ...env },
    routes: benchRoutes(nginx.url),
    ...(gatewayYaml !== undefined ? { gatewayYaml } : {}),
  });
  return {
    nginx,
    kafka,
    stack,
    stop: async () => {
      await stack.stop();
      await Promise.all([kafka.stop(), nginx.stop()]);
    },
  };
}

/**
 * Waits until what earlier load queued is done: a request with `Prefer: wait` behind it answers once it is through.
 * Refused (a stack that sheds still has the last step's backlog), it tries again when Retry-After says.
 */
export async function drain(target: Target): Promise<void> {
  for (;;) {
    const response = await fetch(target.url, {
      method: 'POST',
      headers: { ...target.headers, prefer: 'wait=120' },
      body: target.body ?? null,
      signal: AbortSignal.timeout(130_000),
    });
    await response.arrayBuffer();
    if (response.status !== 429 && response.status !== 503) return;
    await new Promise((resolve) =>
      setTimeout(resolve, Number(response.headers.get('retry-after') ?? 1) * 1000),
    );
  }
}
