import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The monorepo root: the nearest folder above this package holding pnpm-workspace.yaml. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'pnpm-workspace.yaml'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('testkit: cannot find the repository root (pnpm-workspace.yaml)');
    dir = parent;
  }
  return dir;
}

/** Ignored cache folder for downloaded tools (Kafka jars); SLUICE_CACHE_DIR overrides it. */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.SLUICE_CACHE_DIR ?? join(repoRoot(), '.cache'));
}
