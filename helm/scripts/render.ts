import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ensureHelm, repoRoot } from '@sluice/testkit';

export const chartDir = join(repoRoot(), 'helm', 'sluice');
export const goldenDir = join(repoRoot(), 'helm', 'golden');

/** The scenarios whose rendered manifests are committed as golden files and diffed in CI. */
export const scenarios = {
  default: { release: 'sluice', args: [] as string[] },
  'multi-region': { release: 'sluice-eu-west-1', args: ['-f', join(chartDir, 'values-multi-region.yaml')] },
} as const;

export function helm(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(ensureHelm(), args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** `helm template` of a scenario, for a cluster of a fixed Kubernetes version (so the output is stable). */
export function render(release: string, args: string[]): string {
  const result = helm(['template', release, chartDir, '--kube-version', '1.31.0', ...args]);
  if (result.code !== 0) throw new Error(`helm template failed:\n${result.stderr}`);
  return result.stdout;
}
