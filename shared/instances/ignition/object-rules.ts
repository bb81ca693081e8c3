/**
 * Rules Ignition applies across the fields of one object (a partition, a RAID array, a file...). Each is
 * given the object as parsed, whose fields may still have the wrong type, and checks types itself.
 */

import { isRecord, present } from './issues.ts';
import type { ObjectRule } from './zod-kit.ts';

/** A file, directory or link owner is named by id or by name, not both. */
export const oneOwnerIdentity: ObjectRule = (value, report) => {
  if (typeof value.id === 'number' && typeof value.name === 'string' && value.name !== '') {
    report.error([], 'cannot set both id and name');
  }
};

/** Overwriting a file with nothing would empty it: Ignition wants a source to overwrite with. */
export const overwriteNeedsSource: ObjectRule = (value, report) => {
  const source = isRecord(value.contents) ? value.contents.source : undefined;
  if (value.overwrite === true && !present(source)) {
    report.error(['overwrite'], 'overwrite must be false if contents.source is unspecified');
  }
};

/** HTTP headers mean nothing to a data:, s3:, gs:, tftp: or arn: source, and Ignition refuses them there. */
export const headersNeedHttp: ObjectRule = (value, report) => {
  const headers = value.httpHeaders;
  const source = typeof value.source === 'string' ? value.source : '';
  if (Array.isArray(headers) && headers.length > 0 && !/^https?:/i.test(source)) {
    report.error(['httpHeaders'], 'HTTP headers are only allowed with http or https sources');
  }
};

/** A partition is found by number or label; one that must not exist is found by number alone. */
export const partitionIdentity: ObjectRule = (value, report) => {
  if ((!present(value.number) || value.number === 0) && !present(value.label)) {
    report.error([], 'a partition number >= 1 or a label must be specified');
  }
  if (value.shouldExist !== false) return;
  if (typeof value.number !== 'number' || value.number === 0) {
    report.error(['number'], 'a partition with shouldExist false needs a non-zero number');
  }
  for (const key of ['label', 'sizeMiB', 'startMiB', 'typeGuid', 'guid']) {
    if (present(value[key])) report.error([key], 'must be omitted when shouldExist is false');
  }
};

const stripedLevels = ['linear', 'raid0', '0', 'stripe'];

export const raidArray: ObjectRule = (value, report) => {
  if (Array.isArray(value.devices) && value.devices.length === 0) {
    report.error(['devices'], 'raid devices required: list at least one device');
  }
  if (typeof value.spares === 'number' && value.spares !== 0 && stripedLevels.includes(String(value.level))) {
    report.error(['level'], 'spares unsupported for linear and raid0 arrays');
  }
};

/** A custom Clevis pin replaces the tang, tpm2 and threshold settings. */
export const clevisCustomAlone: ObjectRule = (value, report) => {
  if (!isRecord(value.custom)) return;
  const others = ['tang', 'tpm2', 'threshold'].filter((key) => present(value[key]));
  if (others.length > 0) report.error(['custom'], `excludes ${others.join(', ')}`);
};

export const kernelArgumentsDisjoint: ObjectRule = (value, report) => {
  const wanted = Array.isArray(value.shouldExist) ? value.shouldExist : [];
  const unwanted = Array.isArray(value.shouldNotExist) ? value.shouldNotExist : [];
  unwanted.forEach((arg: unknown, index) => {
    if (typeof arg === 'string' && wanted.includes(arg)) {
      report.error(['shouldNotExist', index], `kernel argument "${arg}" is also in shouldExist`);
    }
  });
};
