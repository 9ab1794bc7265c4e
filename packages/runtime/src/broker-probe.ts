import type { Admin } from '@sluice/kafka';

export interface BrokerProbeOptions {
  admin: Admin;
  /** A topic whose metadata is asked for: any answer (even "no such topic") means the cluster answers. */
  topic: string;
  intervalMs: number;
  /** A probe not answered within this is a failure, whatever the client's own (longer) retries would do. */
  timeoutMs: number;
  onChange(reachable: boolean, error?: unknown): void;
}

/**
 * Whether the Kafka cluster answers, asked every `intervalMs`. Consumers and producers notice an unreachable
 * broker late (after their request timeouts and retries); this notices within `intervalMs + timeoutMs`, so that
 * readiness turns false and the ingress refuses new submissions at once instead of holding them.
 */
export class BrokerProbe {
  readonly #options: BrokerProbeOptions;
  #reachable = false;
  #inFlight: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: BrokerProbeOptions) {
    this.#options = options;
  }

  get reachable(): boolean {
    return this.#reachable;
  }

  start(): void {
    void this.probe();
    this.#timer = setInterval(() => void this.probe(), this.#options.intervalMs);
    this.#timer.unref();
  }

  /** One probe; while one is still waiting for its answer no other is sent. */
  probe(): Promise<void> {
    this.#inFlight ??= this.#run().finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  async #run(): Promise<void> {
    const asked = this.#options.admin.describeTopics([this.#options.topic]).then(() => true);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), this.#options.timeoutMs);
    });
    try {
      const answered = await Promise.race([asked, timedOut]);
      if (!answered) {
        this.#set(false, new Error(`no answer from Kafka within ${this.#options.timeoutMs} ms`));
        // Wait for the slow answer (or its failure) before asking again, so that probes never pile up.
        await asked.then(
          () => this.#set(true),
          (error: unknown) => this.#set(false, error),
        );
        return;
      }
      this.#set(true);
    } catch (error) {
      this.#set(false, error);
    } finally {
      clearTimeout(timer);
    }
  }

  #set(reachable: boolean, error?: unknown): void {
    if (reachable === this.#reachable) return;
    this.#reachable = reachable;
    this.#options.onChange(reachable, error);
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
  }
}
