import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { PermanentError } from '../../shared/errors.ts';
import { versionPattern } from '../../shared/messages.ts';
import { parseDigests } from '../../shared/release/digests.ts';
import { compareVersions, parseVersionFile } from '../../shared/release/version-file.ts';
import { reportTallies, runCorpus } from './corpus-support.ts';

afterAll(() => reportTallies('version-and-digests'));

/** Real files as published upstream: Flatcar stable 3510.2.8, Flatcar alpha 4152.0.0, CoreOS 1576.1.0. */
const realFiles = [
  [
    'FLATCAR_BUILD=3510',
    'FLATCAR_BRANCH=2',
    'FLATCAR_PATCH=8',
    'FLATCAR_VERSION=3510.2.8',
    'FLATCAR_VERSION_ID=3510.2.8',
    'FLATCAR_BUILD_ID="2023-09-19-1914"',
    'FLATCAR_SDK_VERSION=3510.0.0',
  ],
  [
    'FLATCAR_BUILD=4152',
    'FLATCAR_BRANCH=0',
    'FLATCAR_PATCH=0',
    'FLATCAR_VERSION=4152.0.0',
    'FLATCAR_VERSION_ID=4152.0.0',
    'FLATCAR_BUILD_ID=""',
    'FLATCAR_SDK_VERSION=4152.0.0',
  ],
  [
    'COREOS_BUILD=1576',
    'COREOS_BRANCH=1',
    'COREOS_PATCH=0',
    'COREOS_VERSION=1576.1.0',
    'COREOS_VERSION_ID=1576.1.0',
    'COREOS_BUILD_ID=""',
    'COREOS_SDK_VERSION=1576.0.0',
  ],
] as const;

function refusal(input: string | Uint8Array): PermanentError {
  try {
    parseVersionFile(input);
  } catch (error) {
    expect(error).toBeInstanceOf(PermanentError);
    expect((error as PermanentError).code).toBe('malformed-version-file');
    expect((error as PermanentError).message.length).toBeLessThan(700);
    return error as PermanentError;
  }
  throw new Error(`expected parseVersionFile to refuse ${JSON.stringify(input).slice(0, 200)}`);
}

const version = fc
  .array(fc.oneof(fc.nat({ max: 99999 }), fc.constantFrom(0, 1, 10)), { minLength: 1, maxLength: 6 })
  .map((parts) => parts.join('.'));

/** Characters no value may hold, bare or quoted: a shell would expand or end on them, or they are controls. */
const alwaysForbidden = ['"', '\\', '$', '`', '\u0000', '\u0007', '\u001b', '\u007f'];
/** Allowed inside double quotes, refused in a bare value. */
const bareForbidden = [' ', '\t', "'", ';', '&', '|', '<', '>', '(', ')', '*', '!', '#', '~', '?', '[', '='];

type Mutation = { text: string; expected: RegExp };

function file(lines: readonly string[]): string {
  return `${lines.join('\n')}\n`;
}

/** A real file with one line broken, and what the refusal must say about it. */
const lineMutation: fc.Arbitrary<Mutation> = fc
  .tuple(
    fc.constantFrom(...realFiles),
    fc.nat(6),
    fc.nat(),
    fc.constantFrom('drop-equals', 'forbidden', 'bare-forbidden', 'bad-key', 'duplicate', 'long-line'),
    fc.constantFrom(...alwaysForbidden),
    fc.constantFrom(...bareForbidden),
    fc.integer({ min: 61, max: 60_000 }),
  )
  .map(([real, index, at, kind, forbidden, bareOnly, length]) => {
    const lines: string[] = [...real];
    const line = lines[index] ?? '';
    const equals = line.indexOf('=');
    const key = line.slice(0, equals);
    const value = line.slice(equals + 1);
    const lineNo = index + 1;
    const insert = (text: string, what: string) => {
      const position = at % (text.length + 1);
      return text.slice(0, position) + what + text.slice(position);
    };
    switch (kind) {
      case 'drop-equals':
        lines[index] = key + value;
        return { text: file(lines), expected: new RegExp(`^version.txt line ${lineNo}: expected KEY=VALUE`) };
      case 'forbidden':
        lines[index] = `${key}=${insert(value, forbidden)}`;
        return {
          text: file(lines),
          expected: new RegExp(`^version.txt line ${lineNo}: expected ${key}'s value to be plain`),
        };
      case 'bare-forbidden': {
        const bare = value.startsWith('"') ? value.slice(1, -1) : value;
        lines[index] = `${key}=${insert(bare, bareOnly)}`;
        return {
          text: file(lines),
          expected: new RegExp(`^version.txt line ${lineNo}: expected ${key}'s value to be plain`),
        };
      }
      case 'bad-key':
        lines[index] = `${insert(key.toLowerCase(), ' ')}=${value}`;
        return { text: file(lines), expected: new RegExp(`^version.txt line ${lineNo}: expected a KEY`) };
      case 'duplicate':
        lines.splice(index + 1, 0, `${key}=${value}`);
        return {
          text: file(lines),
          expected: new RegExp(`^version.txt line ${lineNo + 1}: ${key} is set twice`),
        };
      default:
        lines[index] = `${key}=${value}${' '.repeat(length)}x`;
        return {
          text: file(lines),
          expected: new RegExp(`^version.txt line ${lineNo}: expected ${key}'s value to be plain.*…"$`),
        };
    }
  });

/** A version id that could reach a URL or a store key if it got through. */
const badVersionId = fc.oneof(
  fc.constantFrom('', '.', '..', '../..', '3510..2.8', '3510.2.8.', '.3510', '3510/2/8', '/etc/passwd'),
  fc.constantFrom(
    '3510.2.8-dev',
    '3510.2.8+x',
    '1.2.3.4.5.6.7',
    '0x10',
    '3510,2',
    '3510:2',
    '%2e%2e',
    '@',
    '-1',
  ),
  fc
    .tuple(version, fc.constantFrom('/', '..', '-', '+', '.', ':', '%2F', '@', ',', 'a'), fc.boolean())
    .map(([v, junk, front]) => (front ? `${junk}${v}` : `${v}${junk}`)),
);

describe('bad-input corpus: version.txt', () => {
  it('a real file with one line broken is refused, naming that line', async () => {
    await runCorpus('version.txt', lineMutation, ({ text, expected }) => {
      expect(refusal(text).message).toMatch(expected);
    });
  });

  it('a real file whose VERSION_ID is not digits and dots is refused, naming the line', async () => {
    await runCorpus(
      'version.txt',
      fc.tuple(fc.constantFrom(...realFiles), badVersionId, fc.boolean(), fc.constantFrom('\n', '\r\n')),
      ([real, bad, quoted, eol]) => {
        const lines = real.map((line) =>
          line.includes('_VERSION_ID=')
            ? `${line.slice(0, line.indexOf('=') + 1)}${quoted ? `"${bad}"` : bad}`
            : line,
        );
        const lineNo = real.findIndex((line) => line.includes('_VERSION_ID=')) + 1;
        const prefix = real[0].startsWith('FLATCAR') ? 'FLATCAR' : 'COREOS';
        expect(refusal(`${lines.join(eol)}${eol}`).message).toMatch(
          new RegExp(
            `^version.txt line ${lineNo}: expected ${prefix}_VERSION_ID(?: to be digits and dots|'s value)`,
          ),
        );
      },
    );
  });

  it('a file without a VERSION_ID line, or with both prefixes, or too big, or not UTF-8 is refused', async () => {
    await runCorpus(
      'version.txt',
      fc.tuple(
        fc.constantFrom(...realFiles),
        fc.constantFrom('drop-id', 'both', 'oversize', 'not-utf8'),
        fc.integer({ min: 64 * 1024, max: 200 * 1024 }),
        fc.nat(),
      ),
      ([real, kind, size, at]) => {
        const text = file(real);
        switch (kind) {
          case 'drop-id':
            expect(refusal(file(real.filter((l) => !l.includes('_VERSION_ID=')))).message).toMatch(
              /has no FLATCAR_VERSION_ID or COREOS_VERSION_ID line/,
            );
            return;
          case 'both': {
            const other = real[0].startsWith('FLATCAR')
              ? 'COREOS_VERSION_ID=1.2.3'
              : 'FLATCAR_VERSION_ID=1.2.3';
            expect(refusal(`${text}${other}\n`).message).toMatch(
              /sets both FLATCAR_VERSION_ID and COREOS_VERSION_ID/,
            );
            return;
          }
          case 'oversize': {
            const padded = `${text}#${'x'.repeat(size - text.length)}\n`;
            expect(refusal(padded).message).toBe(
              `version.txt is ${padded.length} bytes, over the limit of 65536 bytes`,
            );
            return;
          }
          case 'not-utf8': {
            const bytes = new TextEncoder().encode(text);
            const broken = new Uint8Array(bytes.length + 1);
            const position = at % (bytes.length + 1);
            broken.set(bytes.subarray(0, position), 0);
            broken[position] = 0xff;
            broken.set(bytes.subarray(position), position + 1);
            expect(refusal(broken).message).toBe('version.txt is not valid UTF-8');
            return;
          }
        }
      },
    );
  });

  it('arbitrary text and bytes give a version of digits and dots or a malformed-version-file error', async () => {
    await runCorpus(
      'version.txt',
      fc.oneof(
        fc.string({ unit: 'binary', maxLength: 300 }),
        fc.uint8Array({ maxLength: 300 }),
        fc
          .array(fc.tuple(fc.constantFrom('FLATCAR_VERSION_ID', 'COREOS_VERSION_ID', 'X'), fc.string()), {
            maxLength: 4,
          })
          .map((pairs) => pairs.map(([k, v]) => `${k}=${v}`).join('\n')),
      ),
      (input) => {
        try {
          const parsed = parseVersionFile(input);
          expect(parsed.version).toMatch(versionPattern);
        } catch (error) {
          expect(error).toBeInstanceOf(PermanentError);
          expect((error as PermanentError).code).toBe('malformed-version-file');
          expect((error as Error).message).toMatch(/^version\.txt /);
        }
      },
    );
  });

  it('a generated well-formed file parses to its version, prefix and fields', async () => {
    const key = fc.stringMatching(/^[A-Z][A-Z0-9_]{0,20}$/).filter((k) => !k.endsWith('_VERSION_ID'));
    const bareValue = fc.stringMatching(/^[A-Za-z0-9._+:@,%/-]{0,30}$/);
    const quotedValue = fc.stringMatching(/^[A-Za-z0-9 ._+:@,%/'#;&|()*!-]{0,30}$/);
    await runCorpus(
      'version.txt',
      fc.record({
        prefix: fc.constantFrom('FLATCAR' as const, 'COREOS' as const),
        version,
        quotedVersion: fc.boolean(),
        fields: fc.uniqueArray(fc.tuple(key, fc.oneof(bareValue, quotedValue), fc.boolean()), {
          selector: ([k]) => k,
          maxLength: 10,
        }),
        position: fc.nat(),
        eol: fc.constantFrom('\n', '\r\n'),
        bom: fc.boolean(),
        comments: fc.array(fc.stringMatching(/^ *#[^\r\n]*$/), { maxLength: 3 }),
      }),
      ({ prefix, version: id, quotedVersion, fields, position, eol, bom, comments }) => {
        const lines = fields.map(([k, v, quoted]) =>
          quoted || /[^A-Za-z0-9._+:@,%/-]/.test(v) ? `${k}="${v}"` : `${k}=${v}`,
        );
        lines.splice(
          position % (lines.length + 1),
          0,
          `${prefix}_VERSION_ID=${quotedVersion ? `"${id}"` : id}`,
        );
        lines.push(...comments, '');
        const parsed = parseVersionFile(`${bom ? '\uFEFF' : ''}${lines.join(eol)}`);
        expect(parsed.prefix).toBe(prefix);
        expect(parsed.version).toBe(id);
        expect(parsed.fields).toEqual(
          Object.fromEntries([...fields.map(([k, v]) => [k, v]), [`${prefix}_VERSION_ID`, id]]),
        );
      },
    );
  });
});

/** The reference order: parts as integers, missing parts as 0. */
function referenceCompare(a: string, b: string): number {
  const left = a.split('.').map(BigInt);
  const right = b.split('.').map(BigInt);
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    const x = left[i] ?? 0n;
    const y = right[i] ?? 0n;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

const sign = (n: number): number => (n < 0 ? -1 : n > 0 ? 1 : 0);

describe('bad-input corpus: compareVersions', () => {
  const anyVersion = fc.oneof(
    version,
    fc
      .array(fc.stringMatching(/^[0-9]{1,25}$/), { minLength: 1, maxLength: 6 })
      .map((parts) => parts.join('.')),
    fc.constantFrom('0', '0.0', '1', '1.0', '1.0.0', '01.2', '1.02', '3510.2.9', '3510.2.10'),
  );

  it('is a total order: reflexive, antisymmetric, transitive, and numeric part by part', async () => {
    await runCorpus(
      'compareVersions',
      fc.tuple(anyVersion, anyVersion, anyVersion),
      ([a, b, c]) => {
        const ab = compareVersions(a, b);
        const bc = compareVersions(b, c);
        const ac = compareVersions(a, c);
        expect(compareVersions(a, a)).toBe(0);
        expect(sign(ab)).toBe(-sign(compareVersions(b, a)) || 0);
        expect(sign(ab)).toBe(referenceCompare(a, b));
        if (ab <= 0 && bc <= 0) expect(ac).toBeLessThanOrEqual(0);
        if (ab >= 0 && bc >= 0) expect(ac).toBeGreaterThanOrEqual(0);
        if (ab === 0) expect(sign(ac)).toBe(sign(bc));
      },
      400,
    );
  });

  it('refuses anything that is not digits and dots with a malformed-version error', async () => {
    await runCorpus(
      'compareVersions',
      fc.tuple(fc.oneof(badVersionId, fc.string()), version, fc.boolean()),
      ([bad, good, first]) => {
        if (versionPattern.test(bad)) return;
        try {
          if (first) compareVersions(bad, good);
          else compareVersions(good, bad);
        } catch (error) {
          expect(error).toBeInstanceOf(PermanentError);
          expect((error as PermanentError).code).toBe('malformed-version');
          expect((error as Error).message).toMatch(/^expected a version of digits and dots, got "/);
          return;
        }
        throw new Error(`compareVersions accepted ${JSON.stringify(bad)}`);
      },
    );
  });
});

const hex128 = fc.stringMatching(/^[0-9a-fA-F]{128}$/);
const fileName = fc.stringMatching(/^[A-Za-z0-9._-]{1,40}$/);

describe('bad-input corpus: DIGESTS files', () => {
  it('junk gives a map of SHA-512 digests or a malformed-digests error naming the line', async () => {
    await runCorpus(
      'parseDigests',
      fc.oneof(
        fc.string({ unit: 'binary', maxLength: 400 }),
        fc
          .array(fc.oneof(fc.string(), fc.constantFrom('# SHA512 HASH', '# MD5 HASH', '#sha512 hash')), {
            maxLength: 8,
          })
          .map((lines) => lines.join('\n')),
        fc
          .tuple(fc.string({ maxLength: 200 }), fc.string())
          .map(([hash, name]) => `# SHA512 HASH\n${hash}  ${name}\n`),
      ),
      (text) => {
        try {
          for (const [name, digest] of parseDigests(text)) {
            expect(digest).toMatch(/^[0-9a-f]{128}$/);
            expect(name).toMatch(/^\S(?:.*\S)?$/);
          }
        } catch (error) {
          expect(error).toBeInstanceOf(PermanentError);
          expect((error as PermanentError).code).toBe('malformed-digests');
          expect((error as Error).message).toMatch(/^DIGESTS line [1-9][0-9]*: expected "<128 hex digits>/);
          expect((error as Error).message.length).toBeLessThan(700);
        }
      },
    );
  });

  it('a generated DIGESTS file reads back exactly; one broken SHA-512 line is refused by number', async () => {
    await runCorpus(
      'parseDigests',
      fc.record({
        entries: fc.uniqueArray(fc.tuple(fileName, hex128, fc.boolean()), {
          selector: ([n]) => n,
          maxLength: 6,
        }),
        md5: fc.array(fc.tuple(fc.stringMatching(/^[0-9a-f]{32}$/), fileName), { maxLength: 3 }),
        broken: fc.option(
          fc.tuple(fc.nat(), fc.constantFrom('short', 'non-hex', 'no-name', 'one-space', 'tab')),
          { nil: undefined },
        ),
        eol: fc.constantFrom('\n', '\r\n'),
      }),
      ({ entries, md5, broken, eol }) => {
        const lines = ['# MD5 HASH', ...md5.map(([h, n]) => `${h}  ${n}`), '# SHA512 HASH'];
        const sha = entries.map(([n, h, binary]) => `${h} ${binary ? '*' : ' '}${n}`);
        let brokenLine: number | undefined;
        if (broken !== undefined && sha.length > 0) {
          const [at, kind] = broken;
          const index = at % sha.length;
          const [n, h] = entries[index] ?? ['x', 'y'];
          sha[index] = {
            short: `${h.slice(1)}  ${n}`,
            'non-hex': `${h.slice(1)}g  ${n}`,
            'no-name': `${h}  `,
            'one-space': `${h}${n}`,
            tab: `${h}\t${n}`,
          }[kind];
          brokenLine = lines.length + index + 1;
        }
        const text = [...lines, ...sha, ''].join(eol);
        if (brokenLine !== undefined) {
          expect(() => parseDigests(text)).toThrow(new RegExp(`^DIGESTS line ${brokenLine}: `));
          return;
        }
        expect(parseDigests(text)).toEqual(new Map(entries.map(([n, h]) => [n, h.toLowerCase()])));
      },
    );
  });
});
