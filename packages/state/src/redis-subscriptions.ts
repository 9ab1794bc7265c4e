import { type StatusMessage, supersedes } from '@sluice/contracts';
import type { Cluster, Redis } from 'ioredis';
import type { RedisKeys } from './redis-keys.ts';
import type { StatusListener } from './types.ts';

interface Registration {
  readonly target: { id: string } | { batchId: string };
  readonly listener: StatusListener;
  /** The batch channel it hears; undefined for an id listener whose request is not known yet. */
  channel: string | undefined;
  /** For an id listener: the latest status it knows, so that a status heard twice is told once. */
  last: StatusMessage | undefined;
  /** For a batch listener: the latest status it knows of each request, for the same reason. */
  readonly known: Map<string, StatusMessage>;
  closed: boolean;
}

const ignore = () => {};

/**
 * The Redis store's listeners on one subscriber connection. Every batch has a channel; a channel is subscribed
 * while at least one listener needs it (SUBSCRIBE is idempotent, so each listener subscribes and the last one out
 * unsubscribes; one connection keeps them in order). A listener by id hears its request's batch channel,
 * filtered by id; while the request is not known yet, it hears every batch channel through one pattern
 * subscription until the request's first status names its batch.
 */
export class StatusSubscriptions {
  readonly #connection: Redis | Cluster;
  readonly #keys: RedisKeys;
  readonly #locate: (id: string) => Promise<StatusMessage | undefined>;
  readonly #readBatch: (batchId: string) => Promise<StatusMessage[] | undefined>;
  readonly #onError: (error: unknown) => void;
  readonly #channels = new Map<string, Set<Registration>>();
  readonly #unplaced = new Set<Registration>();
  readonly #pending = new Set<Promise<void>>();

  constructor(
    connection: Redis | Cluster,
    keys: RedisKeys,
    locate: (id: string) => Promise<StatusMessage | undefined>,
    readBatch: (batchId: string) => Promise<StatusMessage[] | undefined>,
    onError: (error: unknown) => void,
  ) {
    this.#connection = connection;
    this.#keys = keys;
    this.#locate = locate;
    this.#readBatch = readBatch;
    this.#onError = onError;
    connection.on('message', (channel: string, message: string) =>
      this.#dispatch(this.#channels.get(channel), message),
    );
    connection.on('pmessage', (_pattern: string, _channel: string, message: string) =>
      this.#dispatch(this.#unplaced, message),
    );
    // The store subscribes again itself after a reconnect (autoResubscribe is off), so that subscriptions that
    // failed while the server was away are made too.
    connection.on('ready', () => this.#track(this.#restore()));
  }

  subscribe(target: { id: string } | { batchId: string }, listener: StatusListener): () => void {
    const registration: Registration = {
      target,
      listener,
      channel: undefined,
      last: undefined,
      known: new Map(),
      closed: false,
    };
    if ('batchId' in target) this.#track(this.#join(this.#keys.channel(target.batchId), registration));
    else this.#track(this.#place(registration, target.id));
    return () => this.#leave(registration);
  }

  /**
   * Resolves once every subscription asked for before the call is active (or has failed: it is made again on
   * reconnect). The store awaits this before it applies statuses, so that a listener subscribed before an apply
   * on the same store hears it, as with the embedded store; later subscriptions never hold an apply back.
   */
  async settled(): Promise<void> {
    await Promise.all([...this.#pending]);
  }

  close(): void {
    for (const registration of [
      ...this.#unplaced,
      ...[...this.#channels.values()].flatMap((set) => [...set]),
    ]) {
      registration.closed = true;
    }
    this.#channels.clear();
    this.#unplaced.clear();
  }

  #track(work: Promise<void>): void {
    const tracked: Promise<void> = work.catch(ignore).finally(() => this.#pending.delete(tracked));
    this.#pending.add(tracked);
  }

  /** Finds an id listener's batch, subscribes, then reads once more for a change made in between. */
  async #place(registration: Registration, id: string): Promise<void> {
    const before = await this.#locate(id);
    if (registration.closed) return;
    registration.last = before;
    if (before === undefined) {
      this.#unplaced.add(registration);
      await this.#connection.psubscribe(this.#keys.allChannels());
    } else {
      await this.#join(this.#keys.channel(before.batchId), registration);
    }
    await this.#catchUp(registration, id);
  }

  async #catchUp(registration: Registration, id: string): Promise<void> {
    const current = await this.#locate(id);
    if (current !== undefined) this.#deliver(registration, current);
  }

  async #join(channel: string, registration: Registration): Promise<void> {
    registration.channel = channel;
    let listeners = this.#channels.get(channel);
    if (listeners === undefined) {
      listeners = new Set();
      this.#channels.set(channel, listeners);
    }
    listeners.add(registration);
    await this.#connection.subscribe(channel);
  }

  #leave(registration: Registration): void {
    registration.closed = true;
    this.#remove(registration, registration.channel);
  }

  #remove(registration: Registration, channel: string | undefined): void {
    if (channel === undefined) {
      this.#unplaced.delete(registration);
      if (this.#unplaced.size === 0) this.#connection.punsubscribe(this.#keys.allChannels()).catch(ignore);
      return;
    }
    const listeners = this.#channels.get(channel);
    listeners?.delete(registration);
    if (listeners?.size === 0) {
      this.#channels.delete(channel);
      this.#connection.unsubscribe(channel).catch(ignore);
    }
  }

  /**
   * Moves an id listener to the batch its request is in now; it hears both until the new one is active, then
   * reads the request once more for a change published on the new channel before it listened there.
   */
  async #move(registration: Registration, channel: string, id: string): Promise<void> {
    const previous = registration.channel;
    await this.#join(channel, registration);
    this.#remove(registration, previous);
    await this.#catchUp(registration, id);
  }

  #dispatch(registrations: Set<Registration> | undefined, message: string): void {
    if (registrations === undefined || registrations.size === 0) return;
    let statuses: StatusMessage[];
    try {
      statuses = JSON.parse(message) as StatusMessage[];
    } catch (error) {
      this.#onError(error);
      return;
    }
    for (const status of statuses) {
      for (const registration of [...registrations]) this.#deliver(registration, status);
    }
  }

  #deliver(registration: Registration, status: StatusMessage): void {
    if (registration.closed) return;
    const { target } = registration;
    if ('batchId' in target) {
      // A redriven request's earlier batch is told of its later statuses too; batch listeners hear their own.
      if (status.batchId !== target.batchId) return;
      const known = registration.known.get(status.id);
      if (known !== undefined && !supersedes(status, known)) return;
      registration.known.set(status.id, status);
      this.#call(registration, status);
      return;
    }
    if (status.id !== target.id) return;
    if (registration.last !== undefined && !supersedes(status, registration.last)) return;
    registration.last = status;
    const channel = this.#keys.channel(status.batchId);
    if (registration.channel !== channel) this.#track(this.#move(registration, channel, target.id));
    this.#call(registration, status);
  }

  #call(registration: Registration, status: StatusMessage): void {
    try {
      registration.listener(status);
    } catch (error) {
      this.#onError(error);
    }
  }

  async #restore(): Promise<void> {
    const channels = [...this.#channels.keys()];
    if (channels.length > 0) await this.#connection.subscribe(...channels);
    if (this.#unplaced.size > 0) await this.#connection.psubscribe(this.#keys.allChannels());
    // Changes made while the connection was down reached nobody: every listener reads its request or its batch
    // once more, and hears what it had not (a status it knows is not told again).
    const registrations = [...this.#unplaced, ...[...this.#channels.values()].flatMap((set) => [...set])];
    const byBatch = new Map<string, Registration[]>();
    const catchUps: Array<Promise<void>> = [];
    for (const registration of registrations) {
      const { target } = registration;
      if ('id' in target) {
        catchUps.push(this.#catchUp(registration, target.id));
        continue;
      }
      const listeners = byBatch.get(target.batchId) ?? [];
      listeners.push(registration);
      byBatch.set(target.batchId, listeners);
    }
    for (const [batchId, listeners] of byBatch) {
      catchUps.push(
        this.#readBatch(batchId).then((statuses) => {
          for (const status of statuses ?? []) {
            for (const registration of listeners) this.#deliver(registration, status);
          }
        }),
      );
    }
    await Promise.all(catchUps);
  }
}
