import { execFileSync, spawn } from 'node:child_process';
import { mkdir, mkdtemp, realpath, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKafka } from '../src/kafka/launcher.ts';
import { KafkaUnavailableError } from '../src/kafka/types.ts';

const cli = join(import.meta.dirname, '..', 'src', 'cli.ts');

/** Runs `cli.ts kafka:up` with a controlled environment and returns its exit code and output. */
function kafkaUp(env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, 'kafka:up'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
    });
    child.stderr.on('data', (chunk) => {
      output += chunk;
    });
    child.once('exit', (code) => resolve({ code, output }));
  });
}

describe('starting Kafka when nothing can provide it, under CI=true', () => {
  let scratch: string;
  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'sluice-no-kafka-'));
  });
  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  const baseEnv = () => ({
    CI: 'true',
    HOME: scratch,
    // Empty cache so that no previously fetched jars are found; a socket path where no Docker engine listens.
    SLUICE_CACHE_DIR: join(scratch, 'cache'),
    DOCKER_HOST: `unix://${join(scratch, 'docker.sock')}`,
  });

  it('rejects with an error naming the missing Docker engine and Java runtime', async () => {
    const failure = await startKafka({ env: { ...baseEnv(), PATH: join(scratch, 'empty-bin') } }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(KafkaUnavailableError);
    const message = (failure as Error).message;
    expect(message).toContain('Kafka could not be started (CI=true: tests never skip for want of a broker)');
    expect(message).toContain('no Docker engine answers');
    expect(message).toContain('no Java 17+ runtime found');
  });

  it('makes `pnpm kafka:up` exit 1 with that message', async () => {
    const { code, output } = await kafkaUp({ ...baseEnv(), PATH: join(scratch, 'empty-bin') });
    expect(code).toBe(1);
    expect(output).toContain('Kafka could not be started (CI=true');
    expect(output).toContain('no Java 17+ runtime found');
  });

  it('names Maven when Java is there but the Kafka jars cannot be fetched', async () => {
    const bin = join(scratch, 'java-only-bin');
    await mkdir(bin, { recursive: true });
    const java = process.env.JAVA_HOME
      ? join(process.env.JAVA_HOME, 'bin', 'java')
      : execFileSync('sh', ['-c', 'command -v java']).toString().trim();
    await symlink(await realpath(java), join(bin, 'java'));
    const { code, output } = await kafkaUp({ ...baseEnv(), PATH: bin });
    expect(code).toBe(1);
    expect(output).toContain('Maven (`mvn`) not found on PATH');
  });
});
