import { describe, expect, it } from 'vitest';
import { DueIndex } from '../src/due-index.ts';

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
});
