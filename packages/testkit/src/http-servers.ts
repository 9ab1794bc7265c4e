import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** One request an upstream or webhook receiver got, as it arrived. */
export interface ReceivedCall {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
  at: number;
}

export type CallHandler = (call: ReceivedCall, res: ServerResponse) => void | Promise<void>;

export interface RecordingServer {
  url: string;
  port: number;
  calls: ReceivedCall[];
  /** Replaces how the server answers from now on. */
  respond(handler: CallHandler): void;
  close(): Promise<void>;
}

/** Answers with what it received, as JSON: the demo upstream of `pnpm start` and the default of tests. */
export const echo: CallHandler = (call, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(
    JSON.stringify({
      method: call.method,
      path: call.path,
      headers: call.headers,
      body: call.body.toString('utf8'),
    }),
  );
};

/**
 * A real HTTP server on loopback that records every request and answers as the test says: an upstream to
 * call, or a webhook receiver. The body is kept raw, as signature checks need it.
 */
export async function startRecordingServer(
  handler: CallHandler = echo,
  options: { port?: number; host?: string } = {},
): Promise<RecordingServer> {
  let current = handler;
  const calls: ReceivedCall[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const call: ReceivedCall = {
        method: req.method ?? 'GET',
        path: req.url ?? '/',
        headers: req.headers,
        body: Buffer.concat(chunks),
        at: Date.now(),
      };
      calls.push(call);
      Promise.resolve(current(call, res)).catch((error: unknown) => {
        res.writeHead(500);
        res.end(String(error));
      });
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve);
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    calls,
    respond: (next) => {
      current = next;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
