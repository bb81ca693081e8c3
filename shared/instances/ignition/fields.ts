/**
 * Checks of single values that Ignition makes beyond their JSON type. Each returns why Ignition would
 * refuse the value, or undefined. Those that changed between spec versions are factories that take the
 * version's allowed set, so that each spec version names its own.
 */

import { checkDataUrl } from './data-url.ts';
import { truncate } from './issues.ts';
import type { Rule } from './zod-kit.ts';

type Problem = (value: string) => string | undefined;

/** Ignition reads an empty string in an optional path as "not set". */
export const unlessEmpty =
  (problem: Problem): Problem =>
  (value) =>
    value === '' ? undefined : problem(value);

export const absolutePath: Problem = (value) =>
  value.startsWith('/') ? undefined : `expected an absolute path, got "${value}"`;

/** Go's `path.Clean` for an absolute path: Ignition refuses any node or device path that differs from it. */
function cleanPath(value: string): string {
  const parts: string[] = [];
  for (const part of value.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return `/${parts.join('/')}`;
}

export const simplifiedPath: Problem = (value) => {
  if (!value.startsWith('/')) return absolutePath(value);
  const clean = cleanPath(value);
  if (clean === value) return undefined;
  return `path is not fully simplified: "${truncate(value)}" (expected "${truncate(clean)}")`;
};

const guidPattern = /^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$/;

export const guid: Problem = (value) =>
  value === '' || guidPattern.test(value) ? undefined : `expected a GUID, got "${value}"`;

/** sgdisk stores at most 36 bytes of a GPT partition name, and treats ":" as a separator. */
export const partitionLabel: Rule<string> = (value, report) => {
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > 36) report.error([], `partition labels may not exceed 36 characters (bytes), got ${bytes}`);
  if (value.includes(':'))
    report.error([], 'partition label may not contain ":" (sgdisk would truncate it there)');
};

/**
 * A file or directory mode. `specialBits: 'ignored'` is for spec versions in which Ignition accepts
 * setuid, setgid and sticky bits but does not apply them.
 */
export function fileMode(specialBits: 'ignored' | 'applied'): Rule<number> {
  return (value, report) => {
    if (value < 0 || value > 0o7777) {
      report.error([], `expected a mode from 0 to 4095 (07777), got ${value}`);
    } else if (value > 0o777 && specialBits === 'ignored') {
      report.warning([], 'setuid/setgid/sticky bits are not supported in spec versions older than 3.4.0');
    }
  };
}

export const httpUrl: Problem = (value) => {
  try {
    const url = new URL(value);
    if (url.protocol === 'http:' || url.protocol === 'https:') return undefined;
  } catch {
    // refused below
  }
  return `expected an http(s) URL, got "${truncate(value)}"`;
};

/**
 * A resource `source`: a URL with one of the version's schemes. Ignition decodes `data:` URLs itself and
 * cannot check `arn:` ones before it fetches; the others must parse as URLs.
 */
export function sourceUrl(schemes: readonly string[]): Problem {
  const expected = `expected a URL with scheme ${schemes.join(', ')}`;
  return (value) => {
    if (value === '') return undefined;
    const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(value)?.[1]?.toLowerCase();
    if (scheme === undefined || !schemes.includes(scheme)) return `${expected}; got "${truncate(value)}"`;
    if (scheme === 'data') return checkDataUrl(value);
    if (scheme === 'arn') return undefined;
    try {
      new URL(value);
      return undefined;
    } catch {
      return `not a valid URL: "${truncate(value)}"`;
    }
  };
}

const headerName = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export const httpHeaderName: Problem = (value) =>
  headerName.test(value) ? undefined : `expected an HTTP header name, got "${value}"`;

export const compression: Problem = (value) =>
  value === '' || value === 'gzip' ? undefined : `expected "gzip" or null, got "${value}"`;

export const raidLevels = [
  'linear',
  'raid0',
  '0',
  'stripe',
  'raid1',
  '1',
  'mirror',
  'raid4',
  '4',
  'raid5',
  '5',
];
raidLevels.push('raid6', '6', 'raid10', '10');

export const raidLevel: Problem = (value) =>
  raidLevels.includes(value) ? undefined : `expected a RAID level, got "${value}"`;

/** An empty format is no format: the filesystem is left as it is. */
export function filesystemFormat(formats: readonly string[]): Problem {
  return (value) =>
    value === '' || formats.includes(value)
      ? undefined
      : `expected one of ${formats.join(', ')}; got "${value}"`;
}

/** Empty link targets are refused from spec 3.3.0 on. */
export const linkTargetRequired: Problem = (value) => (value === '' ? 'link target is required' : undefined);
