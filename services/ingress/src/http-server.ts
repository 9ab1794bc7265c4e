import { createServer, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { isSheddable } from './overload.ts';
import { problemBody } from './problems.ts';

/** What the server asks before handing a submission to the app (see OverloadShedder). */
export interface Shedder {
  /** Undefined to go on, with `done` called once its answer is sent; else why it is refused. */
  admit(): string | undefined;
  done(): void;
}

/**
 * The ingress's HTTP server: Node's parser with the configured header limit, and what the parser refuses
 * before Express sees it (oversized headers, conflicting Content-Length and Transfer-Encoding, malformed
 * request lines) answered as problem documents too.
 */
export function createIngressServer(app: RequestListener, maxHeaderBytes: number, shedder?: Shedder): Server {
  const listener: RequestListener =
    shedder === undefined
      ? app
      : (req, res) => {
          if (!isSheddable(req.method, req.url, req.headers.prefer?.toString())) return app(req, res);
          const refusal = shedder.admit();
          if (refusal !== undefined) return refuseAtCapacity(res, refusal);
          res.once('close', () => shedder.done());
          app(req, res);
        };
  const server = createServer({ maxHeaderSize: maxHeaderBytes }, listener);
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) return;
    const tooLarge = error.code === 'HPE_HEADER_OVERFLOW';
    const body = JSON.stringify(
      problemBody(tooLarge ? 'headers-too-large' : 'validation', '/', {
        detail: tooLarge
          ? `headers exceed ${maxHeaderBytes} bytes`
          : `malformed HTTP request (${error.code})`,
      }),
    );
    const status = tooLarge ? '431 Request Header Fields Too Large' : '400 Bad Request';
    socket.end(
      `HTTP/1.1 ${status}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
  return server;
}

/**
 * The refusal of a submission while this replica is past its capacity: written straight to the response, with no
 * Express, body parsing or authentication, so that refusing costs a small fraction of accepting. The unread body
 * is discarded by Node once the answer is sent, and the connection is kept.
 */
function refuseAtCapacity(res: ServerResponse, reason: string): void {
  const path = (res.req.url ?? '/').split('?', 1)[0] ?? '/';
  const body = JSON.stringify(
    problemBody('at-capacity', path, { detail: `${reason}; nothing was accepted, try again shortly` }),
  );
  res.writeHead(503, {
    'content-type': 'application/problem+json',
    'content-length': Buffer.byteLength(body),
    'retry-after': '1',
    'cache-control': 'no-store',
  });
  res.end(body);
}
