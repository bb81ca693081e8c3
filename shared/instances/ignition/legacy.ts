/**
 * Spec 2.x configs, for images older than Ignition 2.0 (CoreOS Container Linux). They are accepted only
 * when the operator turns on `api.allowLegacyIgnition`, and checked for their version alone: the images
 * that read them are frozen, and the 3.x rules do not apply to them.
 */

import type { ValidationIssue } from './issues.ts';

export const legacyIgnitionVersions = ['2.0.0', '2.1.0', '2.2.0', '2.3.0', '2.4.0'] as const;

export function isLegacyVersion(version: string): boolean {
  return (legacyIgnitionVersions as readonly string[]).includes(version);
}

/** The issue with a legacy config's version under this policy, or undefined when it is accepted. */
export function legacyVersionIssue(
  version: string,
  allowLegacy: boolean,
  supported: readonly string[],
): ValidationIssue | undefined {
  if (allowLegacy) return undefined;
  return {
    path: '$.ignition.version',
    message: `spec ${version} is a legacy 2.x version; expected ${supported.join(', ')} (2.x is accepted only when api.allowLegacyIgnition is on)`,
  };
}
