import { createServer, type RequestListener, type Server } from 'node:http';
import { problemBody } from './problems.ts';

/**
 * The ingress's HTTP server: Node's parser with the configured header limit, and what the parser refuses
 * before Express sees it (oversized headers, conflicting Content-Length and Transfer-Encoding, malformed
 * request lines) answered as problem documents too.
 */
export function createIngressServer(app: RequestListener, maxHeaderBytes: number): Server {
  const server = createServer({ maxHeaderSize: maxHeaderBytes }, app);
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
