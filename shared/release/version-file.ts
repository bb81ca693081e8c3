import { PermanentError } from '../errors.ts';
import { versionPattern } from '../messages.ts';

/** A parsed `current/version.txt`: the prefix tells Flatcar from CoreOS, `version` is safe for URLs and keys. */
export interface VersionFile {
  prefix: 'FLATCAR' | 'COREOS';
  version: string;
  fields: Record<string, string>;
}

const keyPattern = /^[A-Z][A-Z0-9_]{0,63}$/;
const bareValuePattern = /^[A-Za-z0-9._+:@,%/-]*$/;
/** Inside double quotes nothing a shell would expand or escape: no `$`, backquote, backslash or quote. */
const quotedValuePattern = /^"([^"\\$`\p{Cc}]*)"$/u;

function malformed(message: string): PermanentError {
  return new PermanentError('malformed-version-file', `version.txt ${message}`);
}

function excerpt(line: string): string {
  return JSON.stringify(line.length > 60 ? `${line.slice(0, 60)}…` : line);
}

/**
 * Parse `current/version.txt` strictly. The file comes from the network and its version ends up in URLs,
 * store keys and ledger keys, so anything that is not a plain `KEY=VALUE` line is refused rather than guessed
 * at, and the version must be digits and dots only.
 */
export function parseVersionFile(input: string | Uint8Array, maxBytes = 64 * 1024): VersionFile {
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.byteLength;
  if (size > maxBytes) {
    throw malformed(`is ${size} bytes, over the limit of ${maxBytes} bytes`);
  }
  let text: string;
  if (typeof input === 'string') {
    text = input;
  } else {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(input);
    } catch (cause) {
      throw new PermanentError('malformed-version-file', 'version.txt is not valid UTF-8', { cause });
    }
  }
  if (text.charCodeAt(0) === 0xfeff) {
    text = text.slice(1);
  }
  const fields: Record<string, string> = {};
  const lines = text.split('\n');
  for (const [index, rawLine] of lines.entries()) {
    const lineNumber = index + 1;
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) {
      continue;
    }
    const equals = line.indexOf('=');
    if (equals < 0) {
      throw malformed(`line ${lineNumber}: expected KEY=VALUE, got ${excerpt(line)}`);
    }
    const key = line.slice(0, equals);
    const rawValue = line.slice(equals + 1);
    if (!keyPattern.test(key)) {
      throw malformed(
        `line ${lineNumber}: expected a KEY of upper-case letters, digits and "_" before "=", got ${excerpt(key)}`,
      );
    }
    let value: string;
    const quoted = quotedValuePattern.exec(rawValue);
    if (quoted) {
      value = quoted[1] ?? '';
    } else if (bareValuePattern.test(rawValue)) {
      value = rawValue;
    } else {
      throw malformed(
        `line ${lineNumber}: expected ${key}'s value to be plain (letters, digits, "._+:@,%/-") or "double-quoted" without $, \`, \\ or ", got ${excerpt(rawValue)}`,
      );
    }
    if (Object.hasOwn(fields, key)) {
      throw malformed(`line ${lineNumber}: ${key} is set twice`);
    }
    fields[key] = value;
  }
  const flatcar = fields.FLATCAR_VERSION_ID;
  const coreos = fields.COREOS_VERSION_ID;
  if (flatcar !== undefined && coreos !== undefined) {
    throw malformed('sets both FLATCAR_VERSION_ID and COREOS_VERSION_ID; expected exactly one');
  }
  const prefix = flatcar !== undefined ? 'FLATCAR' : coreos !== undefined ? 'COREOS' : undefined;
  const version = flatcar ?? coreos;
  if (prefix === undefined || version === undefined) {
    throw malformed('has no FLATCAR_VERSION_ID or COREOS_VERSION_ID line; expected exactly one');
  }
  if (!versionPattern.test(version)) {
    const lineNumber = lines.findIndex((l) => l.startsWith(`${prefix}_VERSION_ID=`)) + 1;
    throw malformed(
      `line ${lineNumber}: expected ${prefix}_VERSION_ID to be digits and dots (e.g. 3510.2.8), got ${excerpt(version)}`,
    );
  }
  if (version.length > maxVersionLength) {
    const lineNumber = lines.findIndex((l) => l.startsWith(`${prefix}_VERSION_ID=`)) + 1;
    throw malformed(
      `line ${lineNumber}: expected ${prefix}_VERSION_ID of at most ${maxVersionLength} characters, got ${version.length}`,
    );
  }
  return { prefix, version, fields };
}

/** Versions become store keys and DynamoDB keys; real ones are about 10 characters. */
export const maxVersionLength = 64;

function versionParts(version: string): string[] {
  if (!versionPattern.test(version)) {
    throw new PermanentError(
      'malformed-version',
      `expected a version of digits and dots, got ${excerpt(version)}`,
    );
  }
  return version.split('.').map((part) => part.replace(/^0+(?=\d)/, ''));
}

/**
 * Order releases numerically part by part, so 3510.2.10 is newer than 3510.2.9; a missing part counts as 0,
 * so 1.2 and 1.2.0 are the same release. Used to move the mirror's `current` only forward.
 */
export function compareVersions(a: string, b: string): number {
  const left = versionParts(a);
  const right = versionParts(b);
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    const x = left[i] ?? '0';
    const y = right[i] ?? '0';
    if (x.length !== y.length) {
      return x.length < y.length ? -1 : 1;
    }
    if (x !== y) {
      return x < y ? -1 : 1;
    }
  }
  return 0;
}
