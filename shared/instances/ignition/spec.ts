/**
 * How a 3.x spec version is described, and how its zod schema is put together. A version is a set of
 * parts: the fields each kind of object has, and the few value rules that changed between versions. The
 * next version is the previous one plus what it adds (`derive`), so each version's difference is one
 * short literal in `spec-versions.ts`; `assemble` nests the objects the same way for every version.
 */

import * as z from 'zod';
import {
  noDeletionBesideNumberZero,
  nothingThroughLinks,
  partitionsApart,
  partitionsDistinct,
  uniqueNodePaths,
} from './cross-field.ts';
import * as field from './fields.ts';
import { verificationHash } from './hash.ts';
import * as rules from './object-rules.ts';
import { dropinNameProblem, unitContentProblem, unitNameProblem } from './systemd-unit.ts';
import {
  bool,
  byField,
  byValue,
  integer,
  list,
  nonNegative,
  type ObjectRule,
  object,
  opt,
  strings,
  text,
} from './zod-kit.ts';

type Shape = z.ZodRawShape;

/** The objects whose field lists grow between spec versions (their nested objects are added here). */
export interface Shapes {
  /** A file's contents or append entry, or a LUKS key file: source optional. */
  resource: Shape;
  /** A merged or replacing config, or a certificate authority: source required. */
  configResource: Shape;
  ignition: Shape;
  partition: Shape;
  filesystem: Shape;
  user: Shape;
  group: Shape;
  /** Absent until the version that introduced LUKS (and with it Clevis tang servers). */
  luks?: Shape;
  tang?: Shape;
  root: Shape;
}

export interface SpecParts {
  version: string;
  /** URL schemes a resource `source` may use. */
  schemes: readonly string[];
  /** Functions `verification.hash` may name. */
  hashFunctions: readonly string[];
  filesystemFormats: readonly string[];
  specialModeBits: 'ignored' | 'applied';
  linkTarget: readonly ((value: string) => string | undefined)[];
  /** Rules across the whole config. */
  configRules: readonly ObjectRule[];
  /** Rules of every merged or replacing config and certificate authority. */
  configResourceRules: readonly ObjectRule[];
  /** Rules of an `ignition.config.merge` entry, and of a certificate authority. */
  mergeRules: readonly ObjectRule[];
  certificateRules: readonly ObjectRule[];
  shapes: Shapes;
}

export type SpecChanges = Omit<Partial<SpecParts>, 'shapes'> & {
  version: string;
  /** Fields this version adds to each kind of object. */
  add?: Partial<Shapes>;
};

/** The next spec version: `base` with `changes` applied and their fields added. */
export function derive(base: SpecParts, changes: SpecChanges): SpecParts {
  const { add = {}, ...rest } = changes;
  const shapes: Shapes = { ...base.shapes };
  for (const [kind, fields] of Object.entries(add) as [keyof Shapes, Shape][]) {
    shapes[kind] = { ...base.shapes[kind], ...fields };
  }
  return { ...base, ...rest, shapes };
}

/** The shared fields of every resource, with this version's source and hash rules. */
function resources(p: SpecParts) {
  const source = text(field.sourceUrl(p.schemes));
  const verification = opt(object({ hash: opt(text(verificationHash(p.hashFunctions))) }));
  const resource = object(
    { source: opt(source), ...p.shapes.resource, verification },
    rules.headersNeedHttp,
    rules.hashNeedsSource,
  );
  const configResource = (...extra: readonly ObjectRule[]) =>
    object(
      { source: opt(source), ...p.shapes.configResource, verification },
      rules.headersNeedHttp,
      ...p.configResourceRules,
      ...extra,
    );
  return { resource, configResource };
}

const path = text(field.simplifiedPath);
const owner = opt(object({ id: opt(integer()), name: opt(z.string()) }, rules.oneOwnerIdentity));

function storage(p: SpecParts, resource: z.ZodType) {
  const partition = object(p.shapes.partition, rules.partitionIdentity);
  const disk = object(
    { device: path, wipeTable: opt(bool), partitions: opt(list(partition)) },
    partitionsDistinct,
    partitionsApart,
    noDeletionBesideNumberZero,
  );
  const raid = object(
    {
      name: z.string(),
      level: text(field.raidLevel),
      devices: list(path, byValue('RAID device')),
      spares: opt(integer(nonNegative)),
      options: opt(strings),
    },
    rules.raidArray,
  );
  const format = opt(text(field.filesystemFormat(p.filesystemFormats)));
  const filesystem = object({ device: path, format, ...p.shapes.filesystem }, rules.filesystemFormatAndLabel);
  const mode = opt(integer(field.fileMode(p.specialModeBits)));
  const node = { path, overwrite: opt(bool) };
  const owners = { user: owner, group: owner };
  const file = object(
    { ...node, contents: opt(resource), append: opt(list(resource)), mode, ...owners },
    rules.overwriteNeedsSource,
  );
  const link = object({ ...node, ...owners, target: text(...p.linkTarget), hard: opt(bool) });
  const luks: Shape =
    p.shapes.luks === undefined
      ? {}
      : { luks: opt(list(luksSchema(p, resource), byField('name', 'LUKS name'))) };
  return object(
    {
      disks: opt(list(disk, byField('device', 'disk device'))),
      raid: opt(list(raid, byField('name', 'RAID name'))),
      filesystems: opt(list(filesystem, byField('device', 'filesystem device'))),
      files: opt(list(file)),
      directories: opt(list(object({ ...node, mode, ...owners }))),
      links: opt(list(link)),
      ...luks,
    },
    nothingThroughLinks,
    uniqueNodePaths,
  );
}

function luksSchema(p: SpecParts, resource: z.ZodType) {
  const tang = object(p.shapes.tang ?? {}, rules.tangThumbprint);
  const clevis = object(
    {
      tang: opt(list(tang, byField('url', 'tang server'))),
      tpm2: opt(bool),
      threshold: opt(integer(nonNegative)),
      custom: opt(object({ pin: z.string(), config: z.string(), needsNetwork: opt(bool) })),
    },
    rules.clevisCustom,
  );
  return object({ ...p.shapes.luks, keyFile: opt(resource), clevis: opt(clevis) }, rules.luksNameAndLabel);
}

const unitContents = text((value) => {
  const problem = unitContentProblem(value);
  return problem === undefined ? undefined : `invalid unit content: ${problem}`;
});

const systemd = object({
  units: opt(
    list(
      object({
        name: text(unitNameProblem),
        enabled: opt(bool),
        mask: opt(bool),
        contents: opt(unitContents),
        dropins: opt(
          list(
            object({ name: text(dropinNameProblem), contents: opt(unitContents) }),
            byField('name', 'drop-in name'),
          ),
        ),
      }),
      byField('name', 'unit name'),
    ),
  ),
});

function passwd(p: SpecParts) {
  return object({
    users: opt(list(object(p.shapes.user), byField('name', 'user name'))),
    groups: opt(list(object(p.shapes.group), byField('name', 'group name'))),
  });
}

function ignitionSection(p: SpecParts, configResource: (...extra: readonly ObjectRule[]) => z.ZodType) {
  const config = object({
    merge: opt(list(configResource(...p.mergeRules), byField('source', 'merge source'))),
    replace: opt(configResource()),
  });
  const certificate = configResource(...p.certificateRules);
  const tls = object({
    certificateAuthorities: opt(list(certificate, byField('source', 'certificate authority source'))),
  });
  return object({
    version: z.string(),
    config: opt(config),
    timeouts: opt(
      object({ httpResponseHeaders: opt(integer(nonNegative)), httpTotal: opt(integer(nonNegative)) }),
    ),
    security: opt(object({ tls: opt(tls) })),
    ...p.shapes.ignition,
  });
}

/** The zod schema of a whole config of this spec version. */
export function assemble(p: SpecParts): z.ZodType {
  const { resource, configResource } = resources(p);
  return object(
    {
      ignition: ignitionSection(p, configResource),
      storage: opt(storage(p, resource)),
      systemd: opt(systemd),
      passwd: opt(passwd(p)),
      ...p.shapes.root,
    },
    ...p.configRules,
  );
}
