import { PermanentError } from '../errors.ts';

const sha512Line = /^([0-9a-fA-F]{128}) [ *](\S(?:.*\S)?)$/;

/**
 * Read the SHA-512 section of an upstream `X.DIGESTS` file (`# SHA512 HASH`, then `<hex>  <name>` lines).
 * Other sections (MD5, SHA1, …) are skipped: only SHA-512 is worth checking. A file without a SHA-512
 * section gives an empty map, and the caller decides whether that matters.
 */
export function parseDigests(text: string): Map<string, string> {
  const digests = new Map<string, string>();
  let section = '';
  for (const [index, rawLine] of text.split('\n').entries()) {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (line.trim() === '') {
      continue;
    }
    if (line.startsWith('#')) {
      section = line.slice(1).trim().toUpperCase();
      continue;
    }
    if (section !== 'SHA512 HASH') {
      continue;
    }
    const match = sha512Line.exec(line);
    if (!match?.[1] || !match[2]) {
      throw new PermanentError(
        'malformed-digests',
        `DIGESTS line ${index + 1}: expected "<128 hex digits>  <file name>" in the SHA512 section, got ${JSON.stringify(line.slice(0, 80))}`,
      );
    }
    digests.set(match[2], match[1].toLowerCase());
  }
  return digests;
}
