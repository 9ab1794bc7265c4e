/** A topic-partition as the Kafka package names it (structurally its TopicPartition). */
export interface PartitionRef {
  topic: string;
  partition: number;
}

/**
 * Pauses a partition while any reason to hold it stands, and resumes it when the last one is gone: a partition
 * shared by two saturated upstreams resumes only when both have room again.
 */
export class PartitionPauser {
  readonly #reasons = new Map<string, { ref: PartitionRef; reasons: Set<string> }>();
  readonly #pause: (partitions: PartitionRef[]) => void;
  readonly #resume: (partitions: PartitionRef[]) => void;

  constructor(pause: (partitions: PartitionRef[]) => void, resume: (partitions: PartitionRef[]) => void) {
    this.#pause = pause;
    this.#resume = resume;
  }

  hold(ref: PartitionRef, reason: string): void {
    const key = `${ref.topic}:${ref.partition}`;
    let entry = this.#reasons.get(key);
    if (entry === undefined) {
      entry = { ref, reasons: new Set() };
      this.#reasons.set(key, entry);
    }
    const wasPaused = entry.reasons.size > 0;
    entry.reasons.add(reason);
    if (!wasPaused) this.#pause([ref]);
  }

  /** Lets go of every partition held for this reason. */
  release(reason: string): void {
    const resumed: PartitionRef[] = [];
    for (const [key, entry] of this.#reasons) {
      if (!entry.reasons.delete(reason)) continue;
      if (entry.reasons.size === 0) {
        this.#reasons.delete(key);
        resumed.push(entry.ref);
      }
    }
    if (resumed.length > 0) this.#resume(resumed);
  }

  /** Partitions held now, with why. */
  held(): Array<{ topic: string; partition: number; reasons: string[] }> {
    return [...this.#reasons.values()].map(({ ref, reasons }) => ({ ...ref, reasons: [...reasons] }));
  }
}
