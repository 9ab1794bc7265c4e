import { type StatWatcher, unwatchFile, watchFile } from 'node:fs';
import { GatewayConfigError, type LoadedGatewayConfig, loadGatewayConfigFile } from './load.ts';

export interface WatchOptions {
  /** How often the file's status is polled. Polling survives the symlink swaps of Kubernetes ConfigMap updates. */
  intervalMs: number;
  onApplied(loaded: LoadedGatewayConfig, previous: LoadedGatewayConfig): void;
  onRejected(error: GatewayConfigError): void;
}

/**
 * Holds the running gateway configuration and follows its file: a changed file is validated first and applied
 * without a restart; an invalid one is rejected (the caller logs it and counts it) and the running one stays.
 */
export class GatewayConfigWatcher {
  readonly #path: string;
  readonly #secretsPath: string | undefined;
  readonly #options: WatchOptions;
  #current: LoadedGatewayConfig;
  readonly #watchers: StatWatcher[] = [];
  #checking: Promise<void> = Promise.resolve();

  constructor(path: string, initial: LoadedGatewayConfig, options: WatchOptions, secretsPath?: string) {
    this.#path = path;
    this.#secretsPath = secretsPath;
    this.#current = initial;
    this.#options = options;
  }

  current(): LoadedGatewayConfig {
    return this.#current;
  }

  start(): void {
    for (const path of [this.#path, this.#secretsPath]) {
      if (path === undefined) continue;
      this.#watchers.push(
        watchFile(path, { interval: this.#options.intervalMs, persistent: false }, () => {
          void this.check();
        }),
      );
    }
  }

  /** Reads the file now and applies it if it changed and is valid. Checks never overlap. */
  check(): Promise<void> {
    this.#checking = this.#checking.then(() => this.#check());
    return this.#checking;
  }

  async #check(): Promise<void> {
    let loaded: LoadedGatewayConfig;
    try {
      loaded = await loadGatewayConfigFile(this.#path, this.#secretsPath);
    } catch (error) {
      if (error instanceof GatewayConfigError) {
        this.#options.onRejected(error);
        return;
      }
      throw error;
    }
    if (loaded.version === this.#current.version) return;
    const previous = this.#current;
    this.#current = loaded;
    this.#options.onApplied(loaded, previous);
  }

  stop(): void {
    for (const path of [this.#path, this.#secretsPath]) if (path !== undefined) unwatchFile(path);
    this.#watchers.length = 0;
  }
}
