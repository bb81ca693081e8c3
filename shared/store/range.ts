import { PermanentError } from '../errors.ts';

/**
 * A range that starts at or past the end of the object. It carries the object's size so an HTTP server
 * can answer 416 with `Content-Range: bytes *\/{totalSize}` without a second lookup.
 */
export class RangeNotSatisfiableError extends PermanentError {
  readonly totalSize: number;
  constructor(key: string, start: number, totalSize: number) {
    super(
      'range-not-satisfiable',
      `range starting at byte ${start} is past the end of ${JSON.stringify(key)} (${totalSize} bytes)`,
    );
    this.name = 'RangeNotSatisfiableError';
    this.totalSize = totalSize;
  }
}

/** Refuse nonsense ranges before any I/O, so both adapters fail the same way. */
export function assertValidRange(key: string, range: { start: number; end?: number }): void {
  const { start, end } = range;
  const ok =
    Number.isSafeInteger(start) &&
    start >= 0 &&
    (end === undefined || (Number.isSafeInteger(end) && end >= start));
  if (!ok) {
    throw new PermanentError(
      'bad-range',
      `byte range ${JSON.stringify(range)} for ${JSON.stringify(key)} is invalid: start and end must be integers with 0 <= start <= end`,
    );
  }
}

/** Clamp an inclusive range to an object of `totalSize` bytes, HTTP style. */
export function resolveRange(
  key: string,
  range: { start: number; end?: number },
  totalSize: number,
): { start: number; end: number } {
  if (range.start >= totalSize) throw new RangeNotSatisfiableError(key, range.start, totalSize);
  return { start: range.start, end: Math.min(range.end ?? totalSize - 1, totalSize - 1) };
}
