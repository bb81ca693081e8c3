/**
 * Rules Ignition applies across entries of a config: the nodes it writes must not collide or be written
 * through each other, the partitions of a disk must not clash, and (from spec 3.4.0) no node may sit where
 * a unit of the same config is written. Each rule checks types itself: the entries may be malformed.
 */

import { isRecord, pathsOf } from './issues.ts';
import type { ObjectRule } from './zod-kit.ts';

const nodeSections = ['files', 'directories', 'links'] as const;

/** One path, one node: a file, directory or link may not share its path with another of any kind. */
export const uniqueNodePaths: ObjectRule = (storage, report) => {
  const seen = new Map<string, string>();
  for (const section of nodeSections) {
    pathsOf(storage[section]).forEach((path, index) => {
      if (path === undefined) return;
      const first = seen.get(path);
      if (first !== undefined)
        report.error([section, index], `duplicate path "${path}" (already in ${first})`);
      else seen.set(path, section);
    });
  }
};

/**
 * A node whose parent is a link from the same config would be written through that link, wherever it
 * points; Ignition refuses it, and a hard link to a directory it creates.
 */
export const nothingThroughLinks: ObjectRule = (storage, report) => {
  const linkPaths = pathsOf(storage.links).filter((p): p is string => p !== undefined);
  const kinds = [
    ['directories', 'directory'],
    ['files', 'file'],
    ['links', 'link'],
  ] as const;
  for (const [section, kind] of kinds) {
    pathsOf(storage[section]).forEach((nodePath, index) => {
      if (nodePath === undefined) return;
      const link = linkPaths.find((l) => nodePath.startsWith(`${l}/`));
      if (link !== undefined) {
        report.error([section, index], `${kind} path includes link in config: "${link}" is a link`);
      }
    });
  }
  const directories = new Set(pathsOf(storage.directories));
  const links = Array.isArray(storage.links) ? storage.links : [];
  links.forEach((entry: unknown, index) => {
    if (
      isRecord(entry) &&
      entry.hard === true &&
      typeof entry.target === 'string' &&
      directories.has(entry.target)
    ) {
      report.error(['links', index], `hard link target is a directory: "${entry.target}" is in directories`);
    }
  });
};

/** Partition numbers and labels name one partition each on a disk. */
export const partitionsDistinct: ObjectRule = (disk, report) => {
  if (!Array.isArray(disk.partitions)) return;
  const numbers = new Set<number>();
  const labels = new Set<string>();
  disk.partitions.forEach((entry: unknown, index) => {
    if (!isRecord(entry)) return;
    const at = ['partitions', index];
    if (typeof entry.number === 'number' && entry.number !== 0) {
      if (numbers.has(entry.number))
        report.error(at, `partition numbers collide: ${entry.number} is used twice`);
      numbers.add(entry.number);
    }
    if (typeof entry.label === 'string') {
      if (labels.has(entry.label))
        report.error(at, `cannot use the same partition label "${entry.label}" twice`);
      labels.add(entry.label);
    }
  });
};

/**
 * Ignition matches a partition numbered 0 to whatever fits, so it cannot also delete partitions by number
 * on the same disk.
 */
export const noDeletionBesideNumberZero: ObjectRule = (disk, report) => {
  if (!Array.isArray(disk.partitions)) return;
  const entries = disk.partitions.filter(isRecord);
  const deletes = entries.some((entry) => entry.shouldExist === false);
  const unnumbered = entries.some(
    (entry) => entry.number === 0 || entry.number === undefined || entry.number === null,
  );
  if (deletes && unnumbered) {
    report.error(
      ['partitions'],
      'a partition with shouldExist false cannot share a disk with partitions numbered 0: give every partition a number',
    );
  }
};

/**
 * Ignition's check of explicit extents (sgdisk would fail on them at boot). Start 0 means "wherever it
 * fits" and is skipped; size 0 ("fill") counts as its first MiB only, exactly as Ignition 2.14 computes
 * it, so nothing it accepts is refused here. Only the first clash is reported, as there.
 */
export const partitionsApart: ObjectRule = (disk, report) => {
  if (!Array.isArray(disk.partitions)) return;
  const extents = disk.partitions.map((entry: unknown) => {
    if (!isRecord(entry) || typeof entry.startMiB !== 'number' || typeof entry.sizeMiB !== 'number')
      return undefined;
    if (entry.startMiB === 0) return undefined;
    const last = entry.sizeMiB === 0 ? entry.startMiB : entry.startMiB + entry.sizeMiB - 1;
    return { start: entry.startMiB, last };
  });
  for (const [i, a] of extents.entries()) {
    if (a === undefined) continue;
    for (const [j, b] of extents.entries()) {
      if (b === undefined || i === j) continue;
      if (a.start <= b.last && a.last >= b.start) {
        const shared = Math.max(a.start, b.start);
        report.error(
          ['partitions', j],
          `partitions overlap: this one and partitions[${i}] share MiB ${shared}`,
        );
        return;
      }
    }
  }
};

/** Where Ignition writes the units and drop-ins of a config that have contents. */
function unitPaths(systemd: Record<string, unknown>): Set<string> {
  const written = new Set<string>();
  const hasContents = (entry: Record<string, unknown>): boolean =>
    typeof entry.contents === 'string' && entry.contents !== '';
  const units = Array.isArray(systemd.units) ? systemd.units : [];
  for (const unit of units) {
    if (!isRecord(unit) || typeof unit.name !== 'string') continue;
    if (hasContents(unit)) written.add(`/etc/systemd/system/${unit.name}`);
    const dropins = Array.isArray(unit.dropins) ? unit.dropins : [];
    for (const dropin of dropins) {
      if (isRecord(dropin) && typeof dropin.name === 'string' && hasContents(dropin)) {
        written.add(`/etc/systemd/system/${unit.name}.d/${dropin.name}`);
      }
    }
  }
  return written;
}

/**
 * From spec 3.4.0 Ignition refuses a file, directory or link at the path a unit or drop-in with contents
 * is written to, instead of letting one silently overwrite the other.
 */
export const noNodeAtUnitPath: ObjectRule = (config, report) => {
  if (!isRecord(config.systemd) || !isRecord(config.storage)) return;
  const written = unitPaths(config.systemd);
  for (const section of nodeSections) {
    pathsOf(config.storage[section]).forEach((path, index) => {
      if (path !== undefined && written.has(path)) {
        report.error(
          ['storage', section, index, 'path'],
          'path conflicts with a systemd unit or drop-in of this config',
        );
      }
    });
  }
};
