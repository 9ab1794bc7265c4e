import { idCreatedAt, isId, isTerminal, publicStatus, type StatusMessage } from '@sluice/contracts';
import type { StateStore } from '@sluice/state';
import type { BatchStatusDocument, RequestStatusDocument } from './api-schemas.ts';

/** A status as the public API shows it (the same shape webhooks and result topics carry). */
export function statusDocument(status: StatusMessage): RequestStatusDocument {
  return publicStatus(status);
}

export function batchDocument(batchId: string, statuses: StatusMessage[]): BatchStatusDocument {
  const counts = { queued: 0, processing: 0, succeeded: 0, failed: 0, expired: 0, dead: 0 };
  for (const status of statuses) counts[status.status] += 1;
  const ordered = [...statuses].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return {
    batchId,
    status: statuses.every((s) => isTerminal(s.status)) ? 'completed' : 'open',
    total: statuses.length,
    counts,
    items: ordered.map(statusDocument),
  };
}

export interface LookupOptions {
  store: StateStore;
  /** Waits until this replica has applied every status written so far (another replica's accept included). */
  catchUp(signal: AbortSignal): Promise<void>;
  /** How long a lookup of a recently created, unknown id waits for the status topic; bounded. */
  catchUpTimeoutMs: number;
  now?: () => number;
}

/**
 * Status lookups that any replica can answer: a miss for an id created in the last minute (UUIDv7 carries its
 * creation time) may be another replica's accept that has not reached this one yet, so the lookup waits until
 * this replica has caught up with the status topic before answering 404.
 */
export class Lookups {
  readonly #options: LookupOptions;

  constructor(options: LookupOptions) {
    this.#options = options;
  }

  async status(tenant: string, id: string): Promise<StatusMessage | undefined> {
    const found = await this.#options.store.getStatus(id);
    if (found !== undefined) return found.tenant === tenant ? found : undefined;
    if (!this.#recent(id)) return undefined;
    await this.#catchUp();
    const late = await this.#options.store.getStatus(id);
    return late?.tenant === tenant ? late : undefined;
  }

  async batch(tenant: string, batchId: string): Promise<StatusMessage[] | undefined> {
    let statuses = await this.#options.store.getBatch(batchId);
    if (statuses === undefined && this.#recent(batchId)) {
      await this.#catchUp();
      statuses = await this.#options.store.getBatch(batchId);
    }
    if (statuses === undefined || statuses[0]?.tenant !== tenant) return undefined;
    return statuses;
  }

  /**
   * Resolves with the request's status once it is terminal, or with the latest status when `timeoutMs` runs out
   * or the signal aborts.
   */
  async waitForTerminal(
    status: StatusMessage,
    timeoutMs: number,
    signal: AbortSignal,
  ): Promise<StatusMessage> {
    if (isTerminal(status.status) || timeoutMs <= 0) return status;
    if (signal.aborted) return status;
    let latest = status;
    return await new Promise<StatusMessage>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      let unsubscribe: () => void = () => {};
      const finish = () => {
        clearTimeout(timer);
        unsubscribe();
        signal.removeEventListener('abort', finish);
        resolve(latest);
      };
      unsubscribe = this.#options.store.subscribe({ id: status.id }, (next) => {
        latest = next;
        if (isTerminal(next.status)) finish();
      });
      timer = setTimeout(finish, timeoutMs);
      signal.addEventListener('abort', finish, { once: true });
      // The status may have moved between the caller's read and the subscription.
      this.#options.store.getStatus(status.id).then(
        (current) => {
          if (current !== undefined && isTerminal(current.status)) {
            latest = current;
            finish();
          }
        },
        // The store cannot answer now: the subscription or the timeout still ends the wait.
        () => {},
      );
    });
  }

  subscribeBatch(batchId: string, listener: (status: StatusMessage) => void): () => void {
    return this.#options.store.subscribe({ batchId }, listener);
  }

  #recent(id: string): boolean {
    if (!isId(id)) return false;
    const createdAt = idCreatedAt(id);
    // A derived id (see withDerivedIds) does not say when it was made: it may be recent.
    return createdAt === undefined || (this.#options.now ?? Date.now)() - createdAt < 60_000;
  }

  async #catchUp(): Promise<void> {
    const signal = AbortSignal.timeout(this.#options.catchUpTimeoutMs);
    try {
      await this.#options.catchUp(signal);
    } catch {
      // Not caught up in time: answer from what this replica has.
    }
  }
}
