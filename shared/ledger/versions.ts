import { versionPattern } from '../messages.ts';

const partWidth = 20;

/**
 * A version as a string whose lexical order is the numeric order, so DynamoDB can enforce "only forward"
 * inside a condition expression and sort releases by version in an index. Trailing zero parts are dropped
 * so the order agrees with `compareVersions` (1.2 and 1.2.0 are the same release).
 */
export function versionSortKey(version: string): string {
  if (!versionPattern.test(version)) {
    throw new RangeError(`version ${JSON.stringify(version)} is not digits and dots`);
  }
  const parts = version.split('.').map((part) => part.replace(/^0+(?=\d)/, ''));
  while (parts.length > 1 && parts.at(-1) === '0') parts.pop();
  if (parts.some((part) => part.length > partWidth)) {
    throw new RangeError(`version ${JSON.stringify(version)} has a part longer than ${partWidth} digits`);
  }
  return parts.map((part) => part.padStart(partWidth, '0')).join('.');
}
