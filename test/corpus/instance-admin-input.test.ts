import { InvalidArgumentError } from 'commander';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  parseDeadline,
  parseDuration,
  parseLinesPerRequest,
  parsePrefixOption,
} from '../../local/commands/instances-fleet.ts';
import {
  encodeCursor,
  InvalidAdminQueryError,
  maxListLimit,
  parseCursor,
  parseLimit,
  parsePrefix,
} from '../../shared/instances/admin.ts';
import {
  BulkLineError,
  maxBulkLines,
  parseBulkLine,
  splitJsonLines,
  type TextLine,
} from '../../shared/instances/bulk.ts';
import { unwrapRawIgnition } from '../../shared/instances/service.ts';
import { instanceIdPattern } from '../../shared/instances/types.ts';
import { reportTallies, runCorpus } from './corpus-support.ts';

const idish = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,20}$/),
  fc.constantFrom('', '.', '..', 'a/b', '-x', 'web-', '~', 'é', 'a'.repeat(129), ' a'),
);

async function collect(lines: AsyncIterable<TextLine>): Promise<TextLine[]> {
  const out: TextLine[] = [];
  for await (const line of lines) out.push(line);
  return out;
}

describe('bad-input corpus: instance admin queries, JSON lines and CLI options', () => {
  afterAll(() => reportTallies('instance-admin-input'));

  it('parsePrefix: an InvalidAdminQueryError naming ?prefix, or a prefix of some valid id', async () => {
    await runCorpus('parsePrefix', idish, (text) => {
      try {
        const prefix = parsePrefix(text);
        expect(prefix === '' || instanceIdPattern.test(prefix)).toBe(true);
      } catch (error) {
        expect(error).toBeInstanceOf(InvalidAdminQueryError);
        expect((error as InvalidAdminQueryError).path).toBe('?prefix');
      }
    });
  });

  it('parseLimit: a whole number in range, or an error naming ?limit and the range', async () => {
    await runCorpus(
      'parseLimit',
      fc.oneof(
        fc.string({ maxLength: 8 }),
        fc.integer({ min: -5, max: 2000 }).map(String),
        fc.constant('1e3'),
      ),
      (text) => {
        try {
          const limit = parseLimit(text);
          expect(Number.isInteger(limit) && limit >= 1 && limit <= maxListLimit).toBe(true);
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidAdminQueryError);
          expect((error as Error).message).toContain(`1 to ${maxListLimit}`);
        }
      },
    );
  });

  it('parseCursor: the id a cursor was made from, or an error saying to pass "next" unchanged', async () => {
    await runCorpus(
      'parseCursor',
      fc.oneof(
        fc.string({ maxLength: 40 }),
        idish.map((id) => Buffer.from(id).toString('base64url')),
        idish.map((id) => `${Buffer.from(id).toString('base64url')}=`),
      ),
      (text) => {
        try {
          const id = parseCursor(text);
          if (id !== undefined) {
            expect(instanceIdPattern.test(id)).toBe(true);
            expect(encodeCursor(id)).toBe(text);
          } else expect(text).toBe('');
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidAdminQueryError);
          expect((error as Error).message).toContain('"next"');
        }
      },
    );
  });

  it('splitJsonLines + parseBulkLine: lines as written, or a BulkLineError naming the line', async () => {
    const lineText = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.json({ maxDepth: 2 }),
      idish.map((id) => JSON.stringify({ id, ignition: { ignition: { version: '3.4.0' } } })),
      fc.constantFrom('[1]', 'null', '{"id": 7}', '{"id":"a"', '\r', '\u0000'),
    );
    await runCorpus(
      'splitJsonLines+parseBulkLine',
      fc.tuple(fc.array(lineText, { maxLength: 6 }), fc.integer({ min: 1, max: 16 }), fc.boolean()),
      async ([texts, chunkSize, badBytes]) => {
        const joined = Buffer.concat([
          Buffer.from(texts.join('\n'), 'utf8'),
          badBytes ? Buffer.from([0xff, 0xfe]) : Buffer.alloc(0),
        ]);
        const chunks = (async function* () {
          for (let i = 0; i < joined.length; i += chunkSize) yield joined.subarray(i, i + chunkSize);
        })();
        try {
          const lines = await collect(splitJsonLines(chunks, 64));
          for (const line of lines) {
            expect(line.line).toBeGreaterThanOrEqual(1);
            expect(line.text.trim()).not.toBe('');
            try {
              const { id, body } = parseBulkLine(line);
              expect(instanceIdPattern.test(id)).toBe(true);
              expect(body).not.toHaveProperty('id');
            } catch (error) {
              expect(error).toBeInstanceOf(BulkLineError);
              expect((error as Error).message).toMatch(new RegExp(`^line ${line.line}: \\$`));
            }
          }
        } catch (error) {
          expect(error).toBeInstanceOf(BulkLineError);
          expect((error as Error).message).toMatch(
            /^line \d+: \$: (is not UTF-8 text|is longer than 64 bytes)$/,
          );
        }
      },
    );
  });

  it('unwrapRawIgnition: only a body whose ignition.version is a string is taken as a raw config', async () => {
    await runCorpus(
      'unwrapRawIgnition',
      fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constant({ ignition: { version: '3.4.0' } })),
      (body) => {
        const out = unwrapRawIgnition(body);
        const raw =
          typeof body === 'object' &&
          body !== null &&
          !Array.isArray(body) &&
          typeof (body as { ignition?: { version?: unknown } }).ignition?.version === 'string';
        if (raw) expect(out).toEqual({ ignition: JSON.stringify(body) });
        else expect(out).toBe(body);
      },
    );
  });

  it('parseDeadline, parseDuration, parsePrefixOption and parseLinesPerRequest: a value, or a usage error saying what is expected', async () => {
    await runCorpus(
      'parseDeadline',
      fc.oneof(
        fc.string({ maxLength: 30 }),
        fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
        fc.constantFrom('2026-05-01T12:00:00', '2026-05-01', 'tomorrow', '2026-05-01T12:00:00+02:00'),
      ),
      (text) => {
        try {
          expect(Number.isNaN(Date.parse(parseDeadline(text)))).toBe(false);
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidArgumentError);
          expect((error as Error).message).toContain('ISO-8601');
        }
      },
    );
    await runCorpus(
      'parseDuration',
      fc.oneof(
        fc.string({ maxLength: 12 }),
        fc.tuple(fc.nat(400), fc.constantFrom('s', 'm', 'h', 'd', 'w', '')).map(([n, u]) => `${n}${u}`),
        fc.constantFrom('1h30m', '0s', '7d', '8d', '1d1s', 'h', '-5m'),
      ),
      (text) => {
        try {
          const ms = parseDuration(text);
          expect(ms).toBeGreaterThan(0);
          expect(ms).toBeLessThanOrEqual(7 * 86_400_000);
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidArgumentError);
          expect((error as Error).message).toMatch(/expected a duration|more than 7 days/);
        }
      },
    );
    await runCorpus('parsePrefixOption', idish, (text) => {
      try {
        expect(instanceIdPattern.test(parsePrefixOption(text))).toBe(true);
      } catch (error) {
        expect(error).toBeInstanceOf(InvalidArgumentError);
      }
    });
    await runCorpus(
      'parseLinesPerRequest',
      fc.oneof(
        fc.string({ maxLength: 8 }),
        fc.integer({ min: -5, max: 6000 }).map(String),
        fc.constantFrom('1e3', '0', '5000', '5001', '01', ' 7', '2.5'),
      ),
      (text) => {
        try {
          const lines = parseLinesPerRequest(text);
          expect(Number.isInteger(lines) && lines >= 1 && lines <= maxBulkLines).toBe(true);
          expect(String(lines)).toBe(text);
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidArgumentError);
          expect((error as Error).message).toContain(`expected 1 to ${maxBulkLines}`);
        }
      },
    );
  });
});
