import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { uniqueName } from '../src/naming.ts';
import { freePort } from '../src/net.ts';
import { serviceNames, startStack } from '../src/services.ts';
import { waitFor } from '../src/wait.ts';

const brokers = inject('kafkaBrokers');

describe('the four services as separate processes', () => {
  it('all answer /readyz against one broker and exit 0 on SIGTERM', async () => {
    const stack = await startStack({
      kafkaBrokers: brokers,
      env: { KAFKA_TOPIC_PREFIX: `${uniqueName('stack')}.`, KAFKA_TOPIC_PARTITIONS: '2' },
    });
    try {
      for (const name of serviceNames) {
        const response = await fetch(`${stack.services[name].url}/readyz`);
        expect(response.status, name).toBe(200);
        const body = (await response.json()) as { ready: boolean; checks: Record<string, boolean> };
        expect(body.ready).toBe(true);
        if (name !== 'ingress') expect(body.checks.consumerGroupJoined).toBe(true);
      }
    } finally {
      const exits = await Promise.all(serviceNames.map((name) => stack.services[name].stop('SIGTERM')));
      for (const [index, name] of serviceNames.entries()) {
        expect(exits[index]?.code, `${name} exit code; its output:\n${stack.services[name].output()}`).toBe(
          0,
        );
      }
    }
  });

  it('exits 1 naming every bad variable when the configuration is invalid', async () => {
    const { ServiceProcess } = await import('../src/services.ts');
    const service = await ServiceProcess.start({
      name: 'batch-worker',
      env: { KAFKA_BROKERS: 'not-an-address', KAFKA_CLIENT: 'librdkafka', WORKER_MAX_IN_FLIGHT: '0' },
    });
    const exit = await service.exited();
    expect(exit.code).toBe(1);
    expect(service.output()).toContain('KAFKA_BROKERS');
    expect(service.output()).toContain('KAFKA_CLIENT');
    expect(service.output()).toContain('WORKER_MAX_IN_FLIGHT');
  });
});

describe('the start command', () => {
  it('brings up the four services from the build output and prints where the ingress listens', async () => {
    const port = await freePort();
    const cli = join(import.meta.dirname, '..', 'src', 'cli.ts');
    const child = spawn(process.execPath, [cli, 'start', '--port', String(port), '--skip-build'], {
      env: { ...process.env, KAFKA_BROKERS: brokers, KAFKA_TOPIC_PREFIX: `${uniqueName('start')}.` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
    });
    child.stderr.on('data', (chunk) => {
      output += chunk;
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      await waitFor('the start command to report the stack up', () => output.includes('Sluice is up'), {
        timeoutMs: 90_000,
      });
      expect(output).toContain(`Ingress listening on http://127.0.0.1:${port}`);
      const response = await fetch(`http://127.0.0.1:${port}/readyz`);
      expect(response.status).toBe(200);
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
  });
});
