import fc from 'fast-check';
import { expect } from 'vitest';

/** One seed for the whole corpus, so a failure found once is found again by anyone. */
export const corpusSeed = 20261126;

/** A floor of generated cases per parser, so a thin generator shows; every property runs at least this many. */
export const minimumRuns = 200;

const tallies = new Map<string, number>();

/**
 * Runs a property with the corpus seed and checks it really ran `numRuns` cases, so a generator that
 * filters everything away (or a property that stops early) cannot pass unnoticed. The count is kept per
 * parser for the summary that `reportTallies` prints.
 */
export async function runCorpus<T>(
  parser: string,
  arbitrary: fc.Arbitrary<T>,
  check: (value: T) => void | Promise<void>,
  numRuns = 300,
): Promise<number> {
  let ran = 0;
  await fc.assert(
    fc.asyncProperty(arbitrary, async (value) => {
      ran += 1;
      await check(value);
    }),
    { numRuns, seed: corpusSeed },
  );
  expect(ran).toBeGreaterThanOrEqual(Math.max(minimumRuns, numRuns));
  tallies.set(parser, (tallies.get(parser) ?? 0) + ran);
  return ran;
}

/** Prints, and asserts, how many generated cases each parser of the file went through. */
export function reportTallies(file: string): void {
  const lines = [...tallies].map(([parser, count]) => `  ${parser}: ${count} generated cases`);
  process.stdout.write(`bad-input corpus (${file}, seed ${corpusSeed}):\n${lines.join('\n')}\n`);
  for (const [, count] of tallies) {
    expect(count).toBeGreaterThanOrEqual(minimumRuns);
  }
}

/** Runs `promise` but fails, naming `what`, if it has not settled after `ms`: a hang is a bug here. */
export async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Replaces each field of a good job message, one at a time, by junk (a path, a separator, a space, an empty
 * name, non-http URLs, a doubled dot, a number, null) and expects `parse` to refuse it naming that field.
 */
export async function expectEachJobFieldChecked(
  parser: string,
  validJob: Record<string, unknown>,
  parse: (body: string) => unknown,
): Promise<void> {
  await runCorpus(
    parser,
    fc.tuple(
      fc.constantFrom(...Object.keys(validJob)),
      fc.oneof(
        fc.constantFrom('../etc', 'a/b', '1.2 3', '', 'file:///etc/passwd', 'ftp://x/y', '4081..2'),
        fc.integer(),
        fc.constant(null),
      ),
    ),
    ([key, junk]) => {
      const body = JSON.stringify({ ...validJob, [key]: junk });
      expect(() => parse(body)).toThrow(new RegExp(`job message is invalid: ${key}: `));
    },
  );
}
