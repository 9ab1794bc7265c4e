import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canConnect, freePort, waitFor } from '@sluice/testkit';

/** One nginx (Debian's package) with one worker process: the reference the benchmarks measure Sluice against. */
export interface Nginx {
  url: string;
  pids(): number[];
  stop(): Promise<void>;
}

/** Starts nginx with one `server` block; `body` is what goes inside it, `http` what goes beside it. */
export async function startNginx(body: string, http = ''): Promise<Nginx> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-bench-nginx-'));
  const port = await freePort();
  const conf = `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  ${http}
  server {
    listen 127.0.0.1:${port};
    ${body}
  }
}
`;
  await writeFile(join(dir, 'nginx.conf'), conf);
  const child = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitFor(`nginx on ${port}${stderr ? `: ${stderr}` : ''}`, () => canConnect('127.0.0.1', port), {
    timeoutMs: 10_000,
    intervalMs: 50,
  });
  return {
    url: `http://127.0.0.1:${port}`,
    pids: () => (child.pid === undefined ? [] : [child.pid]),
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** nginx answering every request at once with a small JSON body. */
export const answeringNginx = () =>
  startNginx(`location / { default_type application/json; return 200 '{"ok":true}'; }`);

/** nginx as a reverse proxy to `upstream`, with keep-alive connections toward it. */
export const proxyingNginx = (upstream: string) =>
  startNginx(
    `location / {
      proxy_pass http://sluice_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }`,
    `upstream sluice_upstream { server ${new URL(upstream).host}; keepalive 64; }`,
  );
