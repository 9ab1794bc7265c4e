import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cacheDir } from './paths.ts';

/** Helm 3, built once from the Go module proxy into .cache/tools (no other download site is reachable). */
export const helmVersion = 'v3.22.0';

export function helmBinary(): string {
  return join(cacheDir(), 'tools', 'bin', `helm-${helmVersion}`);
}

export function ensureHelm(log: (line: string) => void = console.log): string {
  const binary = helmBinary();
  if (existsSync(binary)) return binary;
  const go = spawnSync('sh', ['-c', 'command -v go'], { encoding: 'utf8' }).stdout.trim();
  if (go === '') throw new Error('building helm needs Go (the go command) on PATH');
  log(`building helm ${helmVersion} from the Go module proxy; once, into .cache/tools`);
  const bin = join(cacheDir(), 'tools', 'go-bin');
  const built = spawnSync(go, ['install', `helm.sh/helm/v3/cmd/helm@${helmVersion}`], {
    env: { ...process.env, GOBIN: bin },
    stdio: 'inherit',
  });
  if (built.status !== 0) throw new Error(`go install helm.sh/helm/v3/cmd/helm@${helmVersion} failed`);
  mkdirSync(dirname(binary), { recursive: true });
  try {
    renameSync(join(bin, 'helm'), binary);
  } catch (error) {
    throw new Error(`could not move helm into ${binary}`, { cause: error });
  }
  return binary;
}
