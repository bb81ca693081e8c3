import { basename } from 'node:path';
import * as logs from 'aws-cdk-lib/aws-logs';
import { type CldistConfig, resolveProjectPath } from '../../shared/config.ts';
import { ConfigError } from '../../shared/errors.ts';
import { type BundledFile, CldistFunction } from '../constructs/node-function.ts';

const retentionByDays = new Map<number, logs.RetentionDays>(
  Object.values(logs.RetentionDays)
    .filter((value): value is logs.RetentionDays => typeof value === 'number')
    .map((value) => [value as number, value]),
);

/** CloudWatch Logs takes only its own list of periods; any other number is refused at synth. */
export function retention(days: number): logs.RetentionDays {
  const found = retentionByDays.get(days);
  if (found === undefined) {
    throw new ConfigError(
      `cldist:deploy.logRetentionDays: ${days} is not a CloudWatch Logs retention period`,
    );
  }
  return found;
}

/**
 * Keyring files are bundled flat under `keys/` and the deployed config points at them by absolute path,
 * because the project-relative paths of the config mean nothing inside a Lambda bundle.
 */
export function bundledKeyring(config: CldistConfig): { files: BundledFile[]; paths: string[] } {
  const files = config.keyring.files.map((file) => ({
    source: resolveProjectPath(file),
    target: CldistFunction.keyringTarget(file),
  }));
  const targets = files.map((file) => file.target);
  const duplicate = targets.find((target, index) => targets.indexOf(target) !== index);
  if (duplicate !== undefined) {
    throw new ConfigError(
      `keyring.files: two files are named ${basename(duplicate)}; they would overwrite each other in the bundle`,
    );
  }
  return { files, paths: targets.map((target) => CldistFunction.bundledPath(target)) };
}

/** The update payload keys, bundled the same way under `update-keys/`; none when update is not configured. */
export function bundledUpdateKeys(config: CldistConfig): { files: BundledFile[]; paths: string[] } {
  const files = (config.update?.payloadKeys ?? []).map((file) => ({
    source: resolveProjectPath(file),
    target: `update-keys/${basename(file)}`,
  }));
  const targets = files.map((file) => file.target);
  const duplicate = targets.find((target, index) => targets.indexOf(target) !== index);
  if (duplicate !== undefined) {
    throw new ConfigError(
      `update.payloadKeys: two files are named ${basename(duplicate)}; they would overwrite each other in the bundle`,
    );
  }
  return { files, paths: targets.map((target) => CldistFunction.bundledPath(target)) };
}
