import { spawn, spawnSync } from 'node:child_process';

/**
 * Prometheus's own `promtool` (Debian's `prometheus` package; .ci/run installs it). Missing, it is an error
 * that names the package, never a skipped check.
 */
export function promtoolPath(): string {
  const found = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' }).stdout.trim();
  if (found === '') {
    throw new Error(
      'promtool is not installed: install Debian\'s "prometheus" package (apt-get install prometheus)',
    );
  }
  return found;
}

/** Runs `promtool check metrics` on an exposition text; resolves with its exit code and everything it printed. */
export function checkMetrics(text: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(promtoolPath(), ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
    });
    child.stderr.on('data', (chunk) => {
      output += chunk;
    });
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, output }));
    child.stdin.end(text);
  });
}
