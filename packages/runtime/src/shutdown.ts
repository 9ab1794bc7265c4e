import type { Logger } from './logger.ts';

/**
 * Shutdown phases in the order they run: stop taking work (readiness off, HTTP intake closed), drain in-flight
 * work and commit offsets, flush producers, close clients and the operational HTTP server, and telemetry last,
 * so that it still records the shutdown itself.
 */
export const shutdownPhases = ['intake', 'drain', 'flush', 'close', 'telemetry'] as const;
export type ShutdownPhase = (typeof shutdownPhases)[number];

export interface ShutdownStep {
  phase: ShutdownPhase;
  name: string;
  run(): Promise<unknown>;
}

export interface ShutdownOptions {
  logger: Logger;
  /** Hard deadline for all steps together; past it the process exits with code 1. */
  timeoutMs: number;
  /** Ends the process; injectable so tests observe the exit code instead of dying. */
  exit?(code: number): void;
}

/**
 * One ordered, run-once shutdown. Steps run phase by phase (see {@link shutdownPhases}), in the order they were
 * added within a phase; a failing step is logged and the next still runs. SIGTERM and SIGINT start it; a second
 * signal exits at once.
 */
export class Shutdown {
  readonly #steps: ShutdownStep[] = [];
  readonly #options: ShutdownOptions;
  #started: Promise<number> | undefined;

  constructor(options: ShutdownOptions) {
    this.#options = options;
  }

  add(phase: ShutdownPhase, name: string, run: () => Promise<unknown>): this {
    this.#steps.push({ phase, name, run });
    return this;
  }

  get started(): boolean {
    return this.#started !== undefined;
  }

  /** Listens for SIGTERM and SIGINT. */
  listen(): this {
    const onSignal = (signal: NodeJS.Signals) => {
      if (this.#started !== undefined) {
        this.#options.logger.warn({ signal }, 'second signal during shutdown: exiting now');
        this.#exit(130);
        return;
      }
      this.#options.logger.info({ signal }, 'shutdown requested');
      void this.run();
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    return this;
  }

  /** Runs every step once, then exits with 0 when all succeeded in time, otherwise 1. */
  run(reasonCode = 0): Promise<number> {
    this.#started ??= this.#runSteps(reasonCode);
    return this.#started;
  }

  async #runSteps(reasonCode: number): Promise<number> {
    const { logger, timeoutMs } = this.#options;
    const deadline = setTimeout(() => {
      logger.error({ timeoutMs }, 'shutdown exceeded its deadline: exiting');
      this.#exit(1);
    }, timeoutMs);
    deadline.unref();
    let code = reasonCode;
    const ordered = shutdownPhases.flatMap((phase) => this.#steps.filter((step) => step.phase === phase));
    for (const step of ordered) {
      const started = Date.now();
      try {
        await step.run();
        logger.info({ step: step.name, ms: Date.now() - started }, 'shutdown step done');
      } catch (error) {
        code = 1;
        logger.error({ step: step.name, err: error }, 'shutdown step failed');
      }
    }
    clearTimeout(deadline);
    logger.info({ code }, 'shutdown complete');
    this.#exit(code);
    return code;
  }

  #exit(code: number): void {
    (this.#options.exit ?? ((c: number) => process.exit(c)))(code);
  }
}
