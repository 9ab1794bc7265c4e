import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../src/logger.ts';
import { Shutdown, type ShutdownPhase } from '../src/shutdown.ts';

interface LogLine {
  level: number;
  msg: string;
  step?: string;
  err?: { message: string };
}

/** A pino logger writing JSON lines into memory, so that tests can read what was logged. */
function memoryLogger() {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { logger, lines };
}

const silent = () => createLogger('shutdown-test', 'silent');

describe('Shutdown', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('runs steps phase by phase (intake, drain, flush, close, telemetry), in insertion order within a phase', async () => {
    const ran: string[] = [];
    const exit = vi.fn();
    const shutdown = new Shutdown({ logger: silent(), timeoutMs: 10_000, exit });
    const step = (name: string) => async () => {
      ran.push(name);
    };
    const added: Array<[ShutdownPhase, string]> = [
      ['telemetry', 'flush-telemetry'],
      ['close', 'close-clients'],
      ['flush', 'flush-producer'],
      ['drain', 'drain-work'],
      ['close', 'close-http'],
      ['intake', 'readiness-off'],
      ['drain', 'commit-offsets'],
      ['intake', 'stop-http-intake'],
    ];
    for (const [phase, name] of added) shutdown.add(phase, name, step(name));

    expect(shutdown.started).toBe(false);
    const code = await shutdown.run();

    expect(ran).toEqual([
      'readiness-off',
      'stop-http-intake',
      'drain-work',
      'commit-offsets',
      'flush-producer',
      'close-clients',
      'close-http',
      'flush-telemetry',
    ]);
    expect(code).toBe(0);
    expect(exit).toHaveBeenCalledTimes(1);
    expect(exit).toHaveBeenCalledWith(0);
  });

  it('does not start a step before the previous one has finished', async () => {
    const events: string[] = [];
    let markDrainStarted = () => {};
    const drainStarted = new Promise<void>((resolve) => {
      markDrainStarted = resolve;
    });
    let finishDrain = () => {};
    const drainFinished = new Promise<void>((resolve) => {
      finishDrain = resolve;
    });
    const exit = vi.fn();
    const shutdown = new Shutdown({ logger: silent(), timeoutMs: 10_000, exit })
      .add('drain', 'drain', async () => {
        events.push('drain started');
        markDrainStarted();
        await drainFinished;
        events.push('drain finished');
      })
      .add('flush', 'flush', async () => {
        events.push('flush started');
      });

    const running = shutdown.run();
    await drainStarted;
    // One event-loop turn lets a wrongly unawaited next step show up before the assertion.
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(events).toEqual(['drain started']);
    finishDrain();
    await running;
    expect(events).toEqual(['drain started', 'drain finished', 'flush started']);
  });

  it('logs a failing step, still runs the later ones and exits with 1', async () => {
    const { logger, lines } = memoryLogger();
    const ran: string[] = [];
    const exit = vi.fn();
    const shutdown = new Shutdown({ logger, timeoutMs: 10_000, exit })
      .add('drain', 'commit-offsets', async () => {
        throw new Error('coordinator not available');
      })
      .add('flush', 'flush-producer', async () => {
        ran.push('flush-producer');
      })
      .add('close', 'close-clients', async () => {
        ran.push('close-clients');
      });

    const code = await shutdown.run();

    expect(ran).toEqual(['flush-producer', 'close-clients']);
    expect(code).toBe(1);
    expect(exit).toHaveBeenCalledTimes(1);
    expect(exit).toHaveBeenCalledWith(1);
    const failure = lines.find((line) => line.msg === 'shutdown step failed');
    expect(failure).toMatchObject({
      level: 50,
      step: 'commit-offsets',
      err: { message: 'coordinator not available' },
    });
  });

  it('runs the steps only once when run is called twice', async () => {
    let runs = 0;
    const exit = vi.fn();
    const shutdown = new Shutdown({ logger: silent(), timeoutMs: 10_000, exit }).add(
      'close',
      'close',
      async () => {
        runs++;
      },
    );

    const first = shutdown.run();
    const second = shutdown.run(3);
    expect(shutdown.started).toBe(true);
    expect(await Promise.all([first, second])).toEqual([0, 0]);
    expect(await shutdown.run()).toBe(0);
    expect(runs).toBe(1);
    expect(exit).toHaveBeenCalledTimes(1);
  });

  it('exits with the reason code when every step succeeds', async () => {
    const exit = vi.fn();
    const code = await new Shutdown({ logger: silent(), timeoutMs: 10_000, exit }).run(2);
    expect(code).toBe(2);
    expect(exit).toHaveBeenCalledWith(2);
  });

  it('exits with 1 at the deadline when a step hangs', async () => {
    vi.useFakeTimers();
    const { logger, lines } = memoryLogger();
    const exit = vi.fn();
    let closeRan = false;
    const shutdown = new Shutdown({ logger, timeoutMs: 5_000, exit })
      .add('drain', 'stuck-drain', () => new Promise<void>(() => {}))
      .add('close', 'close', async () => {
        closeRan = true;
      });

    void shutdown.run();
    await vi.advanceTimersByTimeAsync(4_999);
    expect(exit).not.toHaveBeenCalled();

    await vi.advanceTimersByTimeAsync(1);
    expect(exit).toHaveBeenCalledTimes(1);
    expect(exit).toHaveBeenCalledWith(1);
    expect(closeRan).toBe(false);
    expect(lines.some((line) => line.msg === 'shutdown exceeded its deadline: exiting')).toBe(true);
  });

  it('does not exit at the deadline when the steps finished in time', async () => {
    vi.useFakeTimers();
    const exit = vi.fn();
    const shutdown = new Shutdown({ logger: silent(), timeoutMs: 5_000, exit }).add(
      'drain',
      'drain',
      () => new Promise<void>((resolve) => setTimeout(resolve, 1_000)),
    );

    const running = shutdown.run();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(await running).toBe(0);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(exit).toHaveBeenCalledTimes(1);
    expect(exit).toHaveBeenCalledWith(0);
  });
});
