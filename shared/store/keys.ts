import { PermanentError } from '../errors.ts';

/** The folder inside a local store root that holds staged writes; no key may reach into it. */
export const stagingFolder = '.staging';

/** S3's own limit on a key; a local key is a path under the store root, which this also keeps short. */
export const maxKeyBytes = 1024;
/** NAME_MAX of Linux file systems: a longer segment cannot be a file or folder name in the local store. */
export const maxSegmentBytes = 255;

function keyProblem(key: string, allowTrailingSlash: boolean): string | undefined {
  if (key.startsWith('/')) return 'it starts with "/"';
  if (key.includes('\\')) return 'it contains a backslash';
  if ([...key].some((char) => char.charCodeAt(0) < 0x20 || char === '\u007f')) {
    return 'it contains a control character';
  }
  if (Buffer.byteLength(key) > maxKeyBytes) return `it is longer than ${maxKeyBytes} bytes`;
  const segments = key.split('/');
  if (allowTrailingSlash && segments.length > 1 && segments.at(-1) === '') segments.pop();
  for (const segment of segments) {
    if (segment === '') return 'it has an empty path segment';
    if (segment === '.' || segment === '..') return `it has a "${segment}" segment`;
    if (segment === stagingFolder) return `it has a "${stagingFolder}" segment, reserved for staged writes`;
    if (Buffer.byteLength(segment) > maxSegmentBytes) {
      return `it has a path segment longer than ${maxSegmentBytes} bytes`;
    }
  }
  return undefined;
}

/** Why `key` is not a valid store key, or undefined if it is: for callers that answer 404 rather than throw. */
export function storeKeyProblem(key: string): string | undefined {
  return key === '' ? 'it is empty' : keyProblem(key, false);
}

/**
 * One rule for both adapters, so a key accepted on a laptop is accepted on S3 and can never escape the
 * local root or alias another key (`a//b`, `a/./b`).
 */
export function assertValidKey(key: string): void {
  const problem = key === '' ? 'it is empty' : keyProblem(key, false);
  if (problem !== undefined) {
    throw new PermanentError('bad-key', `store key ${JSON.stringify(key)} is invalid: ${problem}`);
  }
}

/** A list prefix is a key, possibly partial or ending in "/"; the empty prefix lists everything. */
export function assertValidPrefix(prefix: string): void {
  const problem = prefix === '' ? undefined : keyProblem(prefix, true);
  if (problem !== undefined) {
    throw new PermanentError('bad-key', `store prefix ${JSON.stringify(prefix)} is invalid: ${problem}`);
  }
}
