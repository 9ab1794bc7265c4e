import { readFile } from 'node:fs/promises';
import { createServer, Socket } from 'node:net';

/**
 * A TCP port on loopback that was free just now, for a server that will listen on it a moment later. It is
 * taken below the kernel's ephemeral range: a port from that range (what listen(0) gives) can be taken in the
 * meantime as the source port of any outgoing connection, which on a busy test machine happens (a broker that
 * failed to start with "Address already in use" while benchmarks ran beside it).
 */
export async function freePort(): Promise<number> {
  const [ephemeralLow] = await ephemeralRange();
  const low = 10_000;
  for (let attempt = 0; attempt < 50 && ephemeralLow > low; attempt += 1) {
    const port = low + Math.floor(Math.random() * (ephemeralLow - low));
    if (await canListen(port)) return port;
  }
  return await listenAnywhere();
}

async function ephemeralRange(): Promise<[number, number]> {
  try {
    const [low, high] = (await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8'))
      .trim()
      .split(/\s+/);
    return [Number(low), Number(high)];
  } catch {
    return [32_768, 60_999]; // Linux's default
  }
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

function listenAnywhere(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (typeof address === 'object' && address !== null) resolve(address.port);
        else reject(new Error('could not read the port the OS assigned'));
      });
    });
  });
}

/** Resolves true when something accepts a TCP connection on host:port within timeoutMs. */
export async function canConnect(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.connect(port, host, () => done(true));
  });
}
