/**
 * Ignition config validation. Ignition runs once, at first boot, on a machine nobody can log in to yet: a
 * config it refuses bricks the instance, so every rule Ignition enforces at boot is checked here, at
 * upload, with the JSON path of the bad field.
 *
 * The shape of each spec version is a zod schema (`ignition/spec-versions.ts`, each version derived from
 * the one before); the rules that are Ignition's own live beside it in `ignition/`: `data:` URLs, hashes,
 * systemd units, cross-field rules, unknown keys and legacy 2.x configs.
 */

import { describeType, type IgnitionValidation, isRecord } from './ignition/issues.ts';
import { isLegacyVersion, legacyVersionIssue } from './ignition/legacy.ts';
import { schemaFor, specVersions } from './ignition/spec-versions.ts';
import { collectIssues } from './ignition/zod-issues.ts';

export { checkDataUrl } from './ignition/data-url.ts';
export {
  formatValidationIssues,
  type IgnitionValidation,
  type ValidationIssue,
} from './ignition/issues.ts';
export { legacyIgnitionVersions } from './ignition/legacy.ts';
export { unitContentProblem } from './ignition/systemd-unit.ts';

export interface IgnitionValidationOptions {
  /** Accept spec 2.x configs (old CoreOS images); only their version is checked. */
  allowLegacy: boolean;
  /** `reject` turns each unknown key into an error; default `warn`. */
  unknownKeys?: 'warn' | 'reject';
}

/** The 3.x spec versions checked field by field, oldest first. */
export const supportedIgnitionVersions: readonly string[] = specVersions.map((parts) => parts.version);

/**
 * Validate a parsed Ignition config. Spec 3.0.0 to 3.5.0 is checked field by field; 2.x (when allowed)
 * only for its version, since those configs exist only for old images.
 */
export function validateIgnition(config: unknown, options: IgnitionValidationOptions): IgnitionValidation {
  if (!isRecord(config)) {
    const message = `expected an Ignition config object, got ${describeType(config)}`;
    return { errors: [{ path: '$', message }], warnings: [] };
  }
  const section = config.ignition;
  const version = isRecord(section) && typeof section.version === 'string' ? section.version : undefined;
  if (version === undefined) {
    const message = 'is required: a spec version string such as "3.4.0"';
    return { errors: [{ path: '$.ignition.version', message }], warnings: [] };
  }
  if (isLegacyVersion(version)) {
    const issue = legacyVersionIssue(version, options.allowLegacy, supportedIgnitionVersions);
    return { version, errors: issue === undefined ? [] : [issue], warnings: [] };
  }
  const declared = specVersions.find((parts) => parts.version === version);
  if (declared === undefined) {
    const message = `unsupported spec version "${version}"; expected one of ${supportedIgnitionVersions.join(', ')}`;
    return { version, errors: [{ path: '$.ignition.version', message }], warnings: [] };
  }
  const result: IgnitionValidation = { version, errors: [], warnings: [] };
  const parsed = schemaFor(declared).safeParse(config);
  if (!parsed.success) {
    collectIssues(
      parsed.error.issues,
      { config, declared, unknownKeys: options.unknownKeys ?? 'warn' },
      result,
    );
  }
  return result;
}
