import type { ServerResponse } from 'node:http';
import { type CallHandler, echo, type ReceivedCall, startRecordingServer } from '@sluice/testkit';

/**
 * The upstream of the end-to-end tests. What it does is named by the request path below /up, so that one server
 * serves every scenario at once:
 * - /up/ok/…                 answers 200 with what it received (echo);
 * - /up/fail/{token}/{n}     503 for the first n calls with this token, then 200;
 * - /up/down/…               always 503;
 * - /up/limited/{token}      429 with Retry-After: 1 on the first call, then 200;
 * - /up/hang/…               never answers (the worker's timeout ends the try and closes the connection);
 * - /up/hold/{token}         waits until the test releases the token, then 200;
 * - /up/slow/{token}/{ms}    answers 200 after ms milliseconds;
 * - /up/bad/…                400 (a final answer);
 * - /up/reset/{token}/{n}    for the first n calls with this token, headers and half a body, then the socket is
 *                            destroyed (a connection reset mid-response); then 200;
 * - /up/lag/{token}/{n}      the first n calls with this token never answer, then at once;
 * - /up/hold-fail/{token}/{n} waits until the test releases the token, then as /up/fail/{token}/{n}.
 * A token shared by many requests shares its count: /up/fail/{token}/150 is a storm of 150 503s, whoever gets them.
 * What each call was answered is kept per request (the Idempotency-Key the worker sends: the request id).
 */
export class ScriptedUpstream {
  readonly #counts = new Map<string, number>();
  readonly #held = new Map<string, Array<() => void>>();
  readonly #released = new Set<string>();

  /** What each request's calls were answered, in order: an HTTP status, or 'reset' for a destroyed socket. */
  readonly answers = new Map<string, Array<number | 'reset'>>();

  /** While true, the target at /fragile answers every request 503 (the whole target is down). */
  fragileDown = false;

  readonly handler: CallHandler = (call, res) => {
    if (call.path.startsWith('/fragile')) return this.fragileDown ? answer(res, 503) : echo(call, res);
    const [, , behaviour, token = '', n = '0'] = call.path.split('?')[0]?.split('/') ?? [];
    const seen = this.#count(`${behaviour}/${token}`);
    const log = (what: number | 'reset') => {
      const id = String(call.headers['idempotency-key'] ?? '');
      const list = this.answers.get(id) ?? [];
      list.push(what);
      this.answers.set(id, list);
    };
    const reply = (status: number, headers: Record<string, string> = {}, body = '') => {
      log(status);
      answer(res, status, headers, body);
    };
    const ok = () => {
      log(200);
      echo(call, res);
    };
    switch (behaviour) {
      case 'ok':
        return ok();
      case 'fail':
        return seen <= Number(n) ? reply(503) : ok();
      case 'down':
        return reply(503);
      case 'limited':
        return seen === 1 ? reply(429, { 'retry-after': '1' }) : ok();
      case 'hang':
        // Never answered, rather than answered late: a try's timeout is then the only way it can end, whatever
        // the machine's speed, and a timeout that did not fire would leave the request unfinished.
        return;
      case 'slow':
        return new Promise<void>((resolve) => setTimeout(resolve, Number(n))).then(ok);
      case 'hold':
        return this.#hold(token).then(ok);
      case 'bad':
        return reply(400, { 'content-type': 'application/json' }, '{"error":"bad input"}');
      case 'reset':
        if (seen > Number(n)) return ok();
        log('reset');
        return resetMidResponse(res);
      case 'lag':
        return seen <= Number(n) ? undefined : ok();
      case 'hold-fail':
        return this.#hold(token).then(() => (seen <= Number(n) ? reply(503) : ok()));
      default:
        return reply(404);
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

/** Promises a body it never finishes: the client reads the headers, part of the body, and then a reset. */
function resetMidResponse(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
  res.write('{"partial":', () => res.socket?.destroy());
}

/** A target that accepts connections, reads what is sent, and never writes a byte back. */
export interface SilentServer {
  url: string;
  /** The request ids (Idempotency-Key headers) of every request it received, one entry per request. */
  requestIds(): string[];
  close(): Promise<void>;
}

export async function startSilentServer(): Promise<SilentServer> {
  // A recording server whose handler never writes: the request is read and kept, the answer never comes.
  const server = await startRecordingServer(() => {});
  return {
    url: server.url,
    requestIds: () => server.calls.map((call) => String(call.headers['idempotency-key'] ?? '')),
    close: () => server.close(),
  };
}

export function callsTo(calls: ReceivedCall[], prefix: string): ReceivedCall[] {
  return calls.filter((call) => call.path.startsWith(prefix));
}
