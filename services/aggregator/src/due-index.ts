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
  readonly #queue: TinyQueue<Due>;

  /** An index of `entries` (taken over, not copied), built in one pass rather than one push each. */
  constructor(entries: Due[] = []) {
    this.#queue = new TinyQueue<Due>(entries, (a, b) => a.dueAt - b.dueAt);
  }

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

/**
 * Whether an index holding `indexed` entries, of which only `live` can still be current, should be rebuilt from
 * the live ones. An entry goes stale when its batch changes to another due time or is forgotten, and would stay
 * until its own time: a single request's open state is due at its deadline, 24 hours by default, so without
 * rebuilding the index would hold an entry (and its batch id) for every request of the last day. Rebuilding when
 * stale entries outnumber live ones (with slack, so small indexes are left alone) keeps it within twice the live
 * size at an amortised cost of O(1) per entry added.
 */
export function dueIndexNeedsRebuild(indexed: number, live: number, slack = 1_024): boolean {
  return indexed > 2 * live + slack;
}
