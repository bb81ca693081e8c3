import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { parseRange } from '../../local/mirror-http.ts';
import { reportTallies, runCorpus } from './corpus-support.ts';

afterAll(() => reportTallies('range-header'));

const position = fc.oneof(fc.nat({ max: 2000 }), fc.constant(''), fc.constantFrom('1e3', '-1', '0x10', ' 5'));

/** Range headers as clients send them, and broken ones: other units, lists, junk, odd spacing. */
const rangeHeader = fc.oneof(
  fc.tuple(position, position).map(([first, last]) => `bytes=${first}-${last}`),
  fc
    .array(fc.tuple(fc.nat({ max: 2000 }), fc.nat({ max: 2000 })), { minLength: 2, maxLength: 4 })
    .map((pairs) => `bytes=${pairs.map(([a, b]) => `${a}-${b}`).join(',')}`),
  fc
    .tuple(fc.constantFrom('items', 'Bytes', 'bytes ', ''), fc.nat({ max: 2000 }))
    .map(([u, n]) => `${u}=${n}-`),
  fc.string({ maxLength: 40 }),
  fc.string({ maxLength: 20 }).map((tail) => `bytes=${tail}`),
);

describe('Range header corpus', () => {
  it('answers every header with the whole object, one range inside it, or 416, and never throws', async () => {
    await runCorpus(
      'Range',
      fc.tuple(rangeHeader, fc.nat({ max: 1500 })),
      ([header, size]) => {
        const range = parseRange(header, size);
        if (range === undefined || range === 'unsatisfiable') return;
        expect(Number.isSafeInteger(range.start) && Number.isSafeInteger(range.end)).toBe(true);
        expect(range.start).toBeGreaterThanOrEqual(0);
        expect(range.end).toBeGreaterThanOrEqual(range.start);
        expect(range.end).toBeLessThan(size);
      },
      400,
    );
  });

  it('serves a single satisfiable range exactly', async () => {
    await runCorpus(
      'Range (valid)',
      fc
        .nat({ max: 1500 })
        .chain((size) => fc.tuple(fc.constant(size + 1), fc.nat({ max: size }), fc.nat({ max: 3000 }))),
      ([size, start, last]) => {
        expect(parseRange(`bytes=${start}-${last}`, size)).toEqual(
          last < start ? 'unsatisfiable' : { start, end: Math.min(last, size - 1) },
        );
      },
    );
  });
});
