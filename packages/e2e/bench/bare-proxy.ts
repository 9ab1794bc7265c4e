/**
 * The least a Node reverse proxy does, as one process: `node bare-proxy.ts <hpm|undici> <target> <port>`. The
 * direct-mode benchmark measures it beside the ingress, so that the library's own ceiling is next to the figure.
 * No auth, limits or health state; keep-alive toward the target; hop-by-hop headers dropped.
 */
import { Agent, createServer } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { createProxyMiddleware } from 'http-proxy-middleware';
import { Pool } from 'undici';

const [kind, target = '', port = '0'] = process.argv.slice(2);
// An orderly exit on SIGTERM, so that node --cpu-prof writes its profile.
process.once('SIGTERM', () => process.exit(0));
const hop = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade']);

if (kind === 'hpm') {
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const proxy = createProxyMiddleware({ target, changeOrigin: true, xfwd: true, agent });
  createServer((req, res) => {
    void proxy(req, res, () => {
      res.statusCode = 502;
      res.end();
    });
  }).listen(Number(port), '127.0.0.1', () => process.send?.('listening'));
} else {
  const pool = new Pool(target, { connections: 256, pipelining: 1 });
  createServer(async (req, res) => {
    try {
      const answer = await pool.request({
        path: req.url ?? '/',
        method: req.method as 'GET',
        headers: { 'x-forwarded-for': req.socket.remoteAddress ?? '' },
        ...(req.method === 'GET' || req.method === 'HEAD' ? {} : { body: req }),
      });
      const headers = Object.fromEntries(Object.entries(answer.headers).filter(([name]) => !hop.has(name)));
      res.writeHead(answer.statusCode, headers as Record<string, string>);
      await pipeline(answer.body, res);
    } catch {
      if (!res.headersSent) res.statusCode = 502;
      res.end();
    }
  }).listen(Number(port), '127.0.0.1', () => process.send?.('listening'));
}
