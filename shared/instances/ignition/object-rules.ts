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

/** Ignition checks a hash against what it fetched: with nothing to fetch there is nothing to check. */
export const hashNeedsSource: ObjectRule = (value, report) => {
  if (!present(value.source) && isRecord(value.verification) && present(value.verification.hash)) {
    report.error(['verification', 'hash'], 'source must be specified if verification is specified');
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

const nonEmpty = (value: unknown): boolean => typeof value === 'string' && value !== '';
const clevisPins = ['tpm2', 'tang', 'sss'];

/**
 * A custom Clevis pin replaces the tang, tpm2 and threshold settings, and needs both a pin Clevis knows and
 * its config. An all-empty `custom` is no custom pin at all, as in Ignition.
 */
export const clevisCustom: ObjectRule = (clevis, report) => {
  const custom = clevis.custom;
  if (!isRecord(custom) || !(nonEmpty(custom.pin) || nonEmpty(custom.config) || custom.needsNetwork === true))
    return;
  const tang = Array.isArray(clevis.tang) && clevis.tang.length > 0;
  const threshold = typeof clevis.threshold === 'number' && clevis.threshold !== 0;
  if (tang || clevis.tpm2 === true || threshold) {
    report.error([], 'cannot use custom clevis config with tpm2, tang, or threshold');
  }
  if (!nonEmpty(custom.pin)) report.error(['custom', 'pin'], 'missing required custom clevis pin');
  else if (typeof custom.pin === 'string' && !clevisPins.includes(custom.pin)) {
    report.error(
      ['custom', 'pin'],
      `unsupported clevis pin "${custom.pin}": expected ${clevisPins.join(', ')}`,
    );
  }
  if (!nonEmpty(custom.config)) report.error(['custom', 'config'], 'missing required custom clevis config');
};

export const tangThumbprint: ObjectRule = (tang, report) => {
  if (tang.thumbprint === '') report.error(['thumbprint'], 'thumbprint is required');
};

/** cryptsetup opens the volume as /dev/mapper/<name>, and a LUKS2 label holds at most 47 bytes. */
export const luksNameAndLabel: ObjectRule = (luks, report) => {
  if (typeof luks.name === 'string' && luks.name.includes('/')) {
    report.error(['name'], 'device names cannot contain slashes');
  }
  if (typeof luks.label === 'string' && Buffer.byteLength(luks.label, 'utf8') > 47) {
    report.error(['label'], 'luks device labels cannot be longer than 47 characters');
  }
};

/** The longest label, in bytes, that each filesystem's mkfs takes. */
const labelLimits: Record<string, number> = { ext4: 16, btrfs: 256, xfs: 12, swap: 15, vfat: 11 };

/**
 * A filesystem with no format is one Ignition leaves alone; anything that would change it needs a format.
 * A label must fit the format's mkfs.
 */
export const filesystemFormatAndLabel: ObjectRule = (fs, report) => {
  const label = typeof fs.label === 'string' ? fs.label : '';
  if (!nonEmpty(fs.format)) {
    const listed = (key: string): boolean => Array.isArray(fs[key]) && (fs[key] as unknown[]).length > 0;
    const changes =
      nonEmpty(fs.path) ||
      label !== '' ||
      nonEmpty(fs.uuid) ||
      fs.wipeFilesystem === true ||
      listed('options');
    if (changes || listed('mountOptions')) {
      report.error(
        ['format'],
        'format cannot be empty when path, label, uuid, wipeFilesystem, options, or mountOptions is specified',
      );
    }
    if (label !== '') report.error(['label'], 'filesystem must specify format if label is specified');
    return;
  }
  const limit =
    typeof fs.format === 'string' && Object.hasOwn(labelLimits, fs.format)
      ? labelLimits[fs.format]
      : undefined;
  if (limit !== undefined && Buffer.byteLength(label, 'utf8') > limit) {
    report.error(
      ['label'],
      `filesystem labels cannot be longer than ${limit} characters when using ${String(fs.format)}`,
    );
  }
};

/**
 * A merged config or a certificate authority needs a source: from spec 3.1.0 Ignition refuses the entry
 * without one (3.0.0 ignores such a merge entry). A replacing config without one replaces nothing.
 */
export const sourceGiven: ObjectRule = (resource, report) => {
  if (!nonEmpty(resource.source)) report.error([], 'source is required');
};

/** Spec 3.0.0 refuses a certificate authority without a source at the source itself. */
export const certificateSourceGiven: ObjectRule = (certificate, report) => {
  if (!nonEmpty(certificate.source)) report.error(['source'], 'a certificate authority needs a source URL');
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
