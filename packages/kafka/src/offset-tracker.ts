/**
 * Tracks the records of one partition that are in flight and computes what may be committed: everything below
 * the lowest unfinished offset. Records may finish in any order; a crash can then only cause records after the
 * committed point to be processed again, never skip one.
 */
export class PartitionOffsets {
  readonly #inFlight = new Set<bigint>();
  readonly #finished = new Set<bigint>();
  /** Offset after the last record handed out, i.e. where the committed prefix would end with nothing in flight. */
  #fetchedUpTo: bigint | undefined;
  #committed: bigint | undefined;

  /** Registers a record as started. Offsets must be started in increasing order. */
  start(offset: bigint): void {
    this.#inFlight.add(offset);
    this.#fetchedUpTo = offset + 1n;
  }

  /** Whether the record at this offset was already started (records are started in increasing order). */
  handedOut(offset: bigint): boolean {
    return this.#fetchedUpTo !== undefined && offset < this.#fetchedUpTo;
  }

  finish(offset: bigint): void {
    if (this.#inFlight.delete(offset)) this.#finished.add(offset);
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  /**
   * The offset to commit (next to read) if it moved since the last {@link markCommitted}, else undefined.
   * With records in flight it is the lowest in-flight offset; with none, the end of what was handed out.
   */
  committable(): bigint | undefined {
    if (this.#fetchedUpTo === undefined) return undefined;
    let next = this.#fetchedUpTo;
    for (const offset of this.#inFlight) if (offset < next) next = offset;
    for (const offset of this.#finished) if (offset < next) this.#finished.delete(offset);
    return this.#committed === undefined || next > this.#committed ? next : undefined;
  }

  markCommitted(offset: bigint): void {
    if (this.#committed === undefined || offset > this.#committed) this.#committed = offset;
  }
}
