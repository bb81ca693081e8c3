import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createIdIndex } from '../../shared/instances/id-index.ts';

describe('the compact id index', () => {
  it('agrees with a Set through any sequence of adds and removes, across growth', () => {
    const op = fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 300 }));
    fc.assert(
      fc.property(fc.array(op, { maxLength: 2000 }), (ops) => {
        const index = createIdIndex(4);
        const truth = new Set<string>();
        for (const [add, n] of ops) {
          const id = `i-${n}`;
          if (add) {
            index.add(id);
            truth.add(id);
          } else {
            index.remove(id);
            truth.delete(id);
          }
        }
        expect(index.size).toBe(truth.size);
        for (let n = 0; n <= 300; n++) expect(index.has(`i-${n}`)).toBe(truth.has(`i-${n}`));
      }),
      { numRuns: 200, seed: 20261203 },
    );
  });

  it('holds 100,000 ids in at most 32 bytes each, and reuses removed slots', () => {
    const index = createIdIndex();
    for (let i = 0; i < 100_000; i++) index.add(`node-${i}`);
    expect(index.size).toBe(100_000);
    expect(index.bytes / index.size).toBeLessThanOrEqual(32);
    const bytes = index.bytes;
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 50_000; i++) index.remove(`node-${i}`);
      for (let i = 0; i < 50_000; i++) index.add(`node-${i}`);
    }
    expect(index.bytes).toBe(bytes);
    expect(index.has('node-99999')).toBe(true);
    expect(index.has('node-100000')).toBe(false);
  });
});
