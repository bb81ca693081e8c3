/**
 * Ignition config spec 3.0.0 to 3.5.0, written from the published specification documents
 * (https://coreos.github.io/ignition/specs/, and "Upgrading Configs" for what each version adds). 3.0.0 is
 * spelled out; every later version is the one before plus its additions.
 */

import * as z from 'zod';
import { noNodeAtUnitPath } from './cross-field.ts';
import * as field from './fields.ts';
import { isRecord } from './issues.ts';
import {
  certificateSourceGiven,
  hashNeedsSource,
  kernelArgumentsDisjoint,
  sourceGiven,
} from './object-rules.ts';
import { assemble, derive, type SpecParts } from './spec.ts';
import {
  bool,
  byValue,
  integer,
  list,
  nonNegative,
  object,
  opt,
  strings,
  text,
  textWith,
} from './zod-kit.ts';

const guid = opt(text(field.guid));

export const v3_0: SpecParts = {
  version: '3.0.0',
  schemes: ['http', 'https', 'tftp', 's3', 'data'],
  hashFunctions: ['sha512'],
  filesystemFormats: ['ext4', 'btrfs', 'xfs', 'vfat', 'swap'],
  specialModeBits: 'ignored',
  linkTarget: [],
  configRules: [],
  configResourceRules: [],
  mergeRules: [],
  certificateRules: [certificateSourceGiven],
  shapes: {
    resource: { compression: opt(text(field.compression)) },
    configResource: {},
    ignition: {},
    partition: {
      label: opt(textWith(field.partitionLabel)),
      number: opt(integer(nonNegative)),
      sizeMiB: opt(integer(nonNegative)),
      startMiB: opt(integer(nonNegative)),
      typeGuid: guid,
      guid,
      wipePartitionEntry: opt(bool),
      shouldExist: opt(bool),
    },
    filesystem: {
      path: opt(text(field.unlessEmpty(field.simplifiedPath))),
      wipeFilesystem: opt(bool),
      label: opt(z.string()),
      uuid: opt(z.string()),
      options: opt(strings),
    },
    user: {
      name: z.string(),
      passwordHash: opt(z.string()),
      sshAuthorizedKeys: opt(list(z.string(), byValue('SSH key'))),
      uid: opt(integer()),
      gecos: opt(z.string()),
      homeDir: opt(text(field.unlessEmpty(field.absolutePath))),
      noCreateHome: opt(bool),
      primaryGroup: opt(z.string()),
      groups: opt(list(z.string(), byValue('group'))),
      noUserGroup: opt(bool),
      noLogInit: opt(bool),
      shell: opt(z.string()),
      system: opt(bool),
    },
    group: { name: z.string(), gid: opt(integer()), passwordHash: opt(z.string()), system: opt(bool) },
    root: {},
  },
};

const httpHeaders = opt(
  list(
    object({ name: text(field.httpHeaderName), value: opt(z.string()) }),
    // Header names are case-insensitive: "Host" and "host" are one header twice.
    {
      key: (item) => (isRecord(item) && typeof item.name === 'string' ? item.name.toLowerCase() : undefined),
      name: 'header',
    },
  ),
);

export const v3_1 = derive(v3_0, {
  version: '3.1.0',
  hashFunctions: [...v3_0.hashFunctions, 'sha256'],
  configResourceRules: [hashNeedsSource],
  mergeRules: [sourceGiven],
  certificateRules: [sourceGiven],
  add: {
    resource: { httpHeaders },
    configResource: { compression: opt(text(field.compression)), httpHeaders },
    ignition: {
      proxy: opt(
        object({
          httpProxy: opt(text(field.httpUrl)),
          httpsProxy: opt(text(field.httpUrl)),
          noProxy: opt(list(z.string(), byValue('noProxy entry'))),
        }),
      ),
    },
    filesystem: { mountOptions: opt(strings) },
  },
});

export const v3_2 = derive(v3_1, {
  version: '3.2.0',
  schemes: [...v3_1.schemes, 'gs'],
  add: {
    partition: { resize: opt(bool) },
    user: { shouldExist: opt(bool) },
    group: { shouldExist: opt(bool) },
    luks: {
      name: z.string(),
      device: text(field.simplifiedPath),
      label: opt(z.string()),
      uuid: opt(z.string()),
      options: opt(strings),
      wipeVolume: opt(bool),
    },
    tang: { url: text(field.httpUrl), thumbprint: z.string() },
  },
});

export const v3_3 = derive(v3_2, {
  version: '3.3.0',
  filesystemFormats: [...v3_2.filesystemFormats, 'none'],
  linkTarget: [field.linkTargetRequired],
  add: {
    root: {
      kernelArguments: opt(
        object(
          {
            shouldExist: opt(list(z.string(), byValue('kernel argument'))),
            shouldNotExist: opt(list(z.string(), byValue('kernel argument'))),
          },
          kernelArgumentsDisjoint,
        ),
      ),
    },
  },
});

export const v3_4 = derive(v3_3, {
  version: '3.4.0',
  schemes: [...v3_3.schemes, 'arn'],
  specialModeBits: 'applied',
  configRules: [...v3_3.configRules, noNodeAtUnitPath],
  add: {
    luks: { discard: opt(bool), openOptions: opt(strings) },
    tang: { advertisement: opt(z.string()) },
  },
});

export const v3_5 = derive(v3_4, {
  version: '3.5.0',
  add: { luks: { cex: opt(object({ enabled: opt(bool) })) } },
});

export const specVersions: readonly SpecParts[] = [v3_0, v3_1, v3_2, v3_3, v3_4, v3_5];

const built = new Map<string, z.ZodType>();

/** The schema of one spec version, built on first use (most processes validate one or two versions). */
export function schemaFor(parts: SpecParts): z.ZodType {
  let schema = built.get(parts.version);
  if (schema === undefined) {
    schema = assemble(parts);
    built.set(parts.version, schema);
  }
  return schema;
}
