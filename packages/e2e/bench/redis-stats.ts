import { connect } from 'node:net';

/**
 * The calls of every command a Redis server has executed since it started (INFO commandstats), INFO excepted; a
 * command a script runs counts as well as the script's EVALSHA.
 * Spoken in RESP over one short connection, so that the benchmark needs no Redis client of its own.
 */
export async function redisCommandStats(url: string): Promise<Map<string, number>> {
  const { hostname, port } = new URL(url);
  const reply = await new Promise<string>((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      data += chunk;
      const header = /^\$(\d+)\r\n/.exec(data);
      if (header !== null && Buffer.byteLength(data) >= header[0].length + Number(header[1]) + 2) {
        socket.end();
        resolve(data.slice(header[0].length));
      }
    });
    socket.on('error', reject);
    socket.write('*2\r\n$4\r\nINFO\r\n$12\r\ncommandstats\r\n');
  });
  const calls = new Map<string, number>();
  for (const match of reply.matchAll(/^cmdstat_([a-z|_-]+):calls=(\d+)/gm)) {
    if (match[1] !== 'info') calls.set(match[1] as string, Number(match[2]));
  }
  return calls;
}

/** The sum of {@link redisCommandStats}. */
export async function redisCommandCount(url: string): Promise<number> {
  let total = 0;
  for (const count of (await redisCommandStats(url)).values()) total += count;
  return total;
}

/** Calls per command between two readings of {@link redisCommandStats}, largest first. */
export function commandsBetween(before: Map<string, number>, after: Map<string, number>): [string, number][] {
  return [...after]
    .map(([name, count]): [string, number] => [name, count - (before.get(name) ?? 0)])
    .filter(([, count]) => count > 0)
    .sort((a, b) => b[1] - a[1]);
}
