import { describe, expect, it } from 'vitest';
import { DueIndex, dueIndexNeedsRebuild } from '../src/due-index.ts';

describe('DueIndex', () => {
  it('gives back what is due, earliest first, and keeps the rest', () => {
    const index = new DueIndex();
    index.add('c', 30);
    index.add('a', 10);
    index.add('d', 40);
    index.add('b', 20);
    expect(index.takeDue(5)).toEqual([]);
    expect(index.takeDue(25).map((due) => due.batchId)).toEqual(['a', 'b']);
    index.add('early', 1);
    expect(index.takeDue(30)).toEqual([
      { batchId: 'early', dueAt: 1 },
      { batchId: 'c', dueAt: 30 },
    ]);
    expect(index.size).toBe(1);
    expect(index.takeDue(Number.POSITIVE_INFINITY).map((due) => due.batchId)).toEqual(['d']);
    expect(index.size).toBe(0);
  });

  it('built from entries in one pass, gives them back in due order', () => {
    const index = new DueIndex([
      { batchId: 'c', dueAt: 30 },
      { batchId: 'a', dueAt: 10 },
      { batchId: 'b', dueAt: 20 },
    ]);
    expect(index.size).toBe(3);
    expect(index.takeDue(Number.POSITIVE_INFINITY).map((due) => due.batchId)).toEqual(['a', 'b', 'c']);
  });

  it('is rebuilt once stale entries outnumber live ones, past a slack for small indexes', () => {
    expect(dueIndexNeedsRebuild(1_024, 0)).toBe(false);
    expect(dueIndexNeedsRebuild(1_025, 0)).toBe(true);
    expect(dueIndexNeedsRebuild(2 * 100_000 + 1_024, 100_000)).toBe(false);
    expect(dueIndexNeedsRebuild(2 * 100_000 + 1_025, 100_000)).toBe(true);
    expect(dueIndexNeedsRebuild(10, 0, 8)).toBe(true);
  });
});
