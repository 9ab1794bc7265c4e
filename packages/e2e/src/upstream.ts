import type { ServerResponse } from 'node:http';
import { type CallHandler, echo, type ReceivedCall } from '@sluice/testkit';

/**
 * The upstream of the end-to-end tests. What it does is named by the request path below /up, so that one server
 * serves every scenario at once:
 * - /up/ok/…                 answers 200 with what it received (echo);
 * - /up/fail/{token}/{n}     503 for the first n calls with this token, then 200;
 * - /up/down/…               always 503;
 * - /up/limited/{token}      429 with Retry-After: 1 on the first call, then 200;
 * - /up/hang/…               answers after 2 s (past the slow route's timeout);
 * - /up/hold/{token}         waits until the test releases the token, then 200;
 * - /up/slow/{token}/{ms}    answers 200 after ms milliseconds;
 * - /up/bad/…                400 (a final answer).
 */
export class ScriptedUpstream {
  readonly #counts = new Map<string, number>();
  readonly #held = new Map<string, Array<() => void>>();
  readonly #released = new Set<string>();

  /** While true, the target at /fragile answers every request 503 (the whole target is down). */
  fragileDown = false;

  readonly handler: CallHandler = (call, res) => {
    if (call.path.startsWith('/fragile')) return this.fragileDown ? answer(res, 503) : echo(call, res);
    const [, , behaviour, token = '', n = '0'] = call.path.split('?')[0]?.split('/') ?? [];
    const seen = this.#count(`${behaviour}/${token}`);
    switch (behaviour) {
      case 'ok':
        return echo(call, res);
      case 'fail':
        return seen <= Number(n) ? answer(res, 503) : echo(call, res);
      case 'down':
        return answer(res, 503);
      case 'limited':
        return seen === 1 ? answer(res, 429, { 'retry-after': '1' }) : echo(call, res);
      case 'hang':
        return new Promise<void>((resolve) => setTimeout(resolve, 2_000)).then(() => echo(call, res));
      case 'slow':
        return new Promise<void>((resolve) => setTimeout(resolve, Number(n))).then(() => echo(call, res));
      case 'hold':
        return this.#hold(token).then(() => echo(call, res));
      case 'bad':
        return answer(res, 400, { 'content-type': 'application/json' }, '{"error":"bad input"}');
      default:
        return answer(res, 404);
    }
  };

  release(token: string): void {
    this.#released.add(token);
    for (const wake of this.#held.get(token) ?? []) wake();
    this.#held.delete(token);
  }

  #hold(token: string): Promise<void> {
    if (this.#released.has(token)) return Promise.resolve();
    return new Promise((resolve) => {
      const list = this.#held.get(token) ?? [];
      list.push(resolve);
      this.#held.set(token, list);
    });
  }

  #count(key: string): number {
    const next = (this.#counts.get(key) ?? 0) + 1;
    this.#counts.set(key, next);
    return next;
  }
}

function answer(res: ServerResponse, status: number, headers: Record<string, string> = {}, body = ''): void {
  res.writeHead(status, headers);
  res.end(body);
}

export function callsTo(calls: ReceivedCall[], prefix: string): ReceivedCall[] {
  return calls.filter((call) => call.path.startsWith(prefix));
}
