import TinyQueue from 'tinyqueue';

interface Due {
  dueAt: number;
  batchId: string;
}

/**
 * Batches by the time their clock is next due, earliest first, so that the clock sweep visits the few that are
 * due instead of every batch held (hundreds of thousands: closed batches are kept for their retention window).
 * Entries are never updated in place: a batch whose state changes is added again, and an entry that no longer
 * matches its batch's state is skipped by the caller when it comes up.
 */
export class DueIndex {
  readonly #queue = new TinyQueue<Due>([], (a, b) => a.dueAt - b.dueAt);

  add(batchId: string, dueAt: number): void {
    this.#queue.push({ batchId, dueAt });
  }

  /** Removes and returns every entry due at `now` or before, earliest first. */
  takeDue(now: number): Due[] {
    const due: Due[] = [];
    for (let next = this.#queue.peek(); next !== undefined && next.dueAt <= now; next = this.#queue.peek()) {
      due.push(this.#queue.pop() as Due);
    }
    return due;
  }

  get size(): number {
    return this.#queue.length;
  }
}
