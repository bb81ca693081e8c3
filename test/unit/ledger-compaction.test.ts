import { describe, expect, it } from 'vitest';
import { worthCompacting } from '../../local/ledger-compaction.cjs';

/** When a full compaction of the single-machine ledger pays: files by level, shallowest first. */
describe('worthCompacting', () => {
  const limits = { minFiles: 4, minShare: 0.25 };

  it('compacts a load spread over several levels', () => {
    expect(worthCompacting([2, 40, 150, 30], limits)).toBe(true);
  });

  it('leaves a ledger already in one level alone, level 0 included', () => {
    expect(worthCompacting([0, 0, 0, 240], limits)).toBe(false);
    expect(worthCompacting([3, 0, 0, 0], limits)).toBe(false);
    expect(worthCompacting([0, 0, 0, 0, 0, 0, 0], limits)).toBe(false);
  });

  it('leaves too few files above the deepest level alone, in number or in share', () => {
    expect(worthCompacting([1, 2, 0, 0], limits)).toBe(false);
    expect(worthCompacting([2, 1, 5, 300], limits)).toBe(false);
    expect(worthCompacting([2, 2, 0, 12], limits)).toBe(true);
  });
});
