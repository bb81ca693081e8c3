import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PermanentError } from '../../shared/errors.ts';
import { compareVersions, parseVersionFile } from '../../shared/release/version-file.ts';

const flatcar = `FLATCAR_BUILD=3510
FLATCAR_BRANCH=2
FLATCAR_PATCH=8
FLATCAR_VERSION=3510.2.8
FLATCAR_VERSION_ID=3510.2.8
FLATCAR_BUILD_ID="2023-09-19-1914"
FLATCAR_SDK_VERSION=3510.0.0
`;

const coreos = `COREOS_BUILD=1576
COREOS_BRANCH=1
COREOS_PATCH=0
COREOS_VERSION=1576.1.0
COREOS_VERSION_ID=1576.1.0
COREOS_BUILD_ID=""
COREOS_SDK_VERSION=1576.0.0
`;

function failure(input: string | Uint8Array, maxBytes?: number): PermanentError {
  try {
    parseVersionFile(input, maxBytes);
  } catch (error) {
    if (error instanceof PermanentError) {
      return error;
    }
    throw error;
  }
  throw new Error('expected parseVersionFile to throw');
}

describe('parseVersionFile', () => {
  it('reads a Flatcar version.txt, unquoting BUILD_ID', () => {
    const parsed = parseVersionFile(flatcar);
    expect(parsed.prefix).toBe('FLATCAR');
    expect(parsed.version).toBe('3510.2.8');
    expect(parsed.fields.FLATCAR_BUILD_ID).toBe('2023-09-19-1914');
    expect(parsed.fields.FLATCAR_SDK_VERSION).toBe('3510.0.0');
    expect(Object.keys(parsed.fields)).toHaveLength(7);
  });

  it('reads a CoreOS version.txt with an empty quoted BUILD_ID, from bytes', () => {
    const parsed = parseVersionFile(new TextEncoder().encode(coreos));
    expect(parsed).toMatchObject({ prefix: 'COREOS', version: '1576.1.0' });
    expect(parsed.fields.COREOS_BUILD_ID).toBe('');
  });

  it('allows blank lines, comments, CRLF and no final newline', () => {
    const text =
      '# written by the release tooling\r\n\r\nFLATCAR_VERSION_ID=4081.1.0\r\n  # indented comment\nX=1';
    expect(parseVersionFile(text)).toMatchObject({ version: '4081.1.0', fields: { X: '1' } });
  });

  it.each([
    ['a line without "="', `${flatcar}garbage\n`, /line 8: expected KEY=VALUE, got "garbage"/],
    ['a lower-case key', 'flatcar_version_id=1.2.3\n', /line 1: expected a KEY of upper-case letters/],
    ['an export statement', 'export FLATCAR_VERSION_ID=1.2.3\n', /line 1: expected a KEY/],
    ['spaces around "="', 'FLATCAR_VERSION_ID = 1.2.3\n', /line 1: expected a KEY/],
    [
      'command substitution',
      'FLATCAR_BUILD_ID="$(reboot)"\nFLATCAR_VERSION_ID=1\n',
      /line 1: expected FLATCAR_BUILD_ID's value/,
    ],
    ['a backquote', 'FLATCAR_BUILD_ID=`id`\n', /line 1: expected FLATCAR_BUILD_ID's value/],
    [
      'an unterminated quote',
      'FLATCAR_VERSION_ID=1\nFLATCAR_BUILD_ID="2023\n',
      /line 2: expected FLATCAR_BUILD_ID's value/,
    ],
    ['single quotes', "FLATCAR_BUILD_ID='x'\n", /line 1: expected FLATCAR_BUILD_ID's value/],
    [
      'a duplicate key',
      'FLATCAR_VERSION_ID=1.2.3\nFLATCAR_VERSION_ID=1.2.4\n',
      /line 2: FLATCAR_VERSION_ID is set twice/,
    ],
    [
      'a path in the version',
      'FLATCAR_VERSION_ID=../../etc\n',
      /line 1: expected FLATCAR_VERSION_ID to be digits and dots/,
    ],
    [
      'a slash in the version',
      'FLATCAR_VERSION_ID=3510/2\n',
      /line 1: expected FLATCAR_VERSION_ID to be digits and dots/,
    ],
    [
      'a quoted space in the version',
      '\nCOREOS_VERSION_ID="1 2"\n',
      /line 2: expected COREOS_VERSION_ID to be digits and dots/,
    ],
    [
      'an empty version',
      'FLATCAR_VERSION_ID=\n',
      /line 1: expected FLATCAR_VERSION_ID to be digits and dots.*, got ""/,
    ],
    [
      'a version with letters',
      'FLATCAR_VERSION_ID=3510.2.8+dev\n',
      /line 1: expected FLATCAR_VERSION_ID to be digits/,
    ],
    ['no version id', 'FLATCAR_VERSION=3510.2.8\n', /has no FLATCAR_VERSION_ID or COREOS_VERSION_ID line/],
    [
      'both prefixes',
      'FLATCAR_VERSION_ID=1\nCOREOS_VERSION_ID=1\n',
      /sets both FLATCAR_VERSION_ID and COREOS_VERSION_ID/,
    ],
    ['an HTML error page', '<html><body>502 Bad Gateway</body></html>\n', /line 1: expected KEY=VALUE/],
  ])('refuses %s, naming the line and what was expected', (_name, text, message) => {
    const error = failure(text);
    expect(error.code).toBe('malformed-version-file');
    expect(error.message).toMatch(message);
  });

  it('refuses invalid UTF-8', () => {
    expect(failure(Uint8Array.of(0x46, 0xff, 0x3d, 0x31)).message).toMatch(/not valid UTF-8/);
  });

  it('refuses a file over the size limit before parsing it', () => {
    const error = failure(`${flatcar}#${'x'.repeat(200)}\n`, 256);
    expect(error.code).toBe('malformed-version-file');
    expect(error.message).toMatch(/is 371 bytes, over the limit of 256 bytes/);
    expect(parseVersionFile(flatcar, flatcar.length).version).toBe('3510.2.8');
  });

  it('never lets anything but digits and dots through as the version', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (value) => {
        try {
          const { version } = parseVersionFile(`FLATCAR_VERSION_ID=${value}\n`);
          return /^[0-9]+(\.[0-9]+)*$/.test(version);
        } catch (error) {
          return error instanceof PermanentError && error.code === 'malformed-version-file';
        }
      }),
    );
  });
});

describe('compareVersions', () => {
  it('orders numerically part by part', () => {
    expect(compareVersions('3510.2.10', '3510.2.9')).toBeGreaterThan(0);
    expect(compareVersions('3510.2.9', '3510.2.10')).toBeLessThan(0);
    expect(compareVersions('4081.0.0', '3510.99.99')).toBeGreaterThan(0);
    expect(compareVersions('3510.2.8', '3510.2.8')).toBe(0);
    expect(compareVersions('10.0.0', '9.99.99')).toBeGreaterThan(0);
  });

  it('counts missing parts as 0 and ignores leading zeros', () => {
    expect(compareVersions('1.2', '1.2.0')).toBe(0);
    expect(compareVersions('1.2', '1.2.1')).toBeLessThan(0);
    expect(compareVersions('1.02', '1.2')).toBe(0);
  });

  it('handles parts beyond the safe integer range', () => {
    expect(compareVersions('1.99999999999999999999', '1.99999999999999999998')).toBeGreaterThan(0);
  });

  it('sorts like a numeric tuple comparison', () => {
    const version = fc.array(fc.nat({ max: 5000 }), { minLength: 1, maxLength: 4 });
    fc.assert(
      fc.property(version, version, (a, b) => {
        const length = Math.max(a.length, b.length);
        let expected = 0;
        for (let i = 0; i < length && expected === 0; i++) {
          expected = Math.sign((a[i] ?? 0) - (b[i] ?? 0));
        }
        return Math.sign(compareVersions(a.join('.'), b.join('.'))) === expected;
      }),
    );
  });

  it('refuses something that is not a version', () => {
    expect(() => compareVersions('1.2', '1.x')).toThrow(/expected a version of digits and dots, got "1.x"/);
  });
});

describe('version length', () => {
  it('refuses a version id longer than 64 characters, naming the line', () => {
    const text = `FLATCAR_BUILD=1\nFLATCAR_VERSION_ID=${'1'.repeat(65)}\n`;
    expect(() => parseVersionFile(text)).toThrow(
      /line 2: expected FLATCAR_VERSION_ID of at most 64 characters/,
    );
  });
});
