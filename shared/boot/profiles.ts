import * as z from 'zod';
import type { CldistConfig } from '../config.ts';
import {
  channelNames,
  findChannel,
  type SourceChannel,
  type SourceConfig,
  sourceOfChannel,
} from '../config-sources.ts';
import { PermanentError } from '../errors.ts';
import type { ArtifactLedger } from '../ledger/artifacts.ts';
import type { CurrentLedger } from '../ledger/current.ts';
import type { StreamRef } from '../ledger/records.ts';
import { versionPattern } from '../messages.ts';

/** The PXE pair every profile boots; both are mirrored and verified before a script names them. */
export const pxeKernel = 'flatcar_production_pxe.vmlinuz';
export const pxeInitramfs = 'flatcar_production_pxe_image.cpio.gz';
/** What `flatcar-install -o ''` downloads from the `-b` base: the install-to-disk profile needs it too. */
export const diskImage = 'flatcar_production_image.bin.bz2';

/** How a matched machine boots: a release (followed or pinned), kernel arguments, and RAM or disk. */
export interface BootProfile {
  name: string;
  channel: string;
  board: string;
  /** `current` follows the mirror's current version of the channel and board; else a pinned version. */
  version: string;
  kernelArgs: string[];
  /** Absent: the machine runs from RAM. Present: it installs to `disk` with flatcar-install and reboots. */
  install?: { disk: string; channel?: string };
  createdAt: string;
  updatedAt: string;
}

export const profileNamePattern = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/**
 * Characters a kernel argument may hold. None of them is special to iPXE (`$`, `#`, spaces) or to GRUB's
 * shell-like parser (quotes, `$`, `;`, `\`, braces), so an argument means the same in both scripts.
 */
export const kernelArgPattern = /^[A-Za-z0-9._,:=/+@%~-]{1,256}$/;

/** Set by the boot service itself, from the instance and the mirror; a profile cannot override them. */
const reservedArgs = [
  'ignition.config.url',
  'ignition.platform.id',
  'initrd',
  'flatcar.config.url',
  'coreos.config.url',
];

/** Linux's x86 command line limit is 2048 bytes; the Ignition URL and the initrd name need the rest. */
export const maxProfileArgsBytes = 1536;

const diskPattern = /^\/dev\/[A-Za-z0-9._:+/-]{1,200}$/;

export const profileBodySchema = z.strictObject({
  channel: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'a channel name such as "stable"'),
  board: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, 'a board name such as "amd64-usr"')
    .default('amd64-usr'),
  version: z
    .string()
    .refine((v) => v === 'current' || versionPattern.test(v), '"current", or a version such as 4081.2.0')
    .default('current'),
  kernelArgs: z
    .array(
      z
        .string()
        .regex(
          kernelArgPattern,
          'a kernel argument of letters, digits and . _ , : = / + @ % ~ - (no spaces or quotes)',
        )
        .refine(
          (arg) => !reservedArgs.includes(arg.split('=')[0] ?? ''),
          "is set by cldist itself (the instance's Ignition URL, the platform id, the initramfs)",
        ),
    )
    .max(32, 'at most 32 kernel arguments')
    .refine(
      (args) => args.join(' ').length <= maxProfileArgsBytes,
      `at most ${maxProfileArgsBytes} bytes in all`,
    )
    .default(['flatcar.first_boot=1']),
  install: z
    .strictObject({
      disk: z
        .string()
        .regex(diskPattern, 'a block device path such as /dev/sda or /dev/disk/by-id/…')
        .refine((disk) => !disk.split('/').includes('..'), 'no ".." in the path'),
      channel: z
        .string()
        .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'a channel name')
        .optional(),
    })
    .optional(),
});

export type ProfileBody = z.infer<typeof profileBodySchema>;

/** A profile that cannot be saved as given: `path` names the field, the message what to do. */
export class InvalidProfileError extends PermanentError {
  readonly path: string;
  constructor(path: string, message: string) {
    super('invalid-profile', `${path}: ${message}`);
    this.name = 'InvalidProfileError';
    this.path = path;
  }
}

export class ProfileNotFoundError extends PermanentError {
  constructor(name: string) {
    super('not-found', `no boot profile "${name}"; list them with "cldist profiles list"`);
    this.name = 'ProfileNotFoundError';
  }
}

export function assertProfileName(name: string): void {
  if (!profileNamePattern.test(name)) {
    throw new InvalidProfileError(
      '$.name',
      'expected 1 to 63 lower-case letters, digits, ".", "_" or "-", starting with a letter or digit',
    );
  }
}

/** What the release check reads: artifact states and the mirror's current version. */
export type ReleaseFacts = Pick<ArtifactLedger, 'getArtifact'> & Pick<CurrentLedger, 'getCurrent'>;

/**
 * Refuses a profile the mirror cannot boot: a channel, board or artifact it does not mirror, or a pinned
 * version whose PXE pair (and, to install, the disk image) is not verified in the ledger.
 */
export async function checkProfileRelease(
  body: ProfileBody,
  ledger: ReleaseFacts,
  config: CldistConfig,
): Promise<void> {
  const channels = channelNames(config.sources);
  const found = profileChannel(config.sources, body.channel);
  if (found === undefined) {
    throw new InvalidProfileError(
      '$.channel',
      `"${body.channel}" is not mirrored; the mirror has ${channels.join(', ')}`,
    );
  }
  if (body.install?.channel !== undefined && !channels.includes(body.install.channel)) {
    throw new InvalidProfileError(
      '$.install.channel',
      `"${body.install.channel}" is not mirrored; the mirror has ${channels.join(', ')}`,
    );
  }
  if (!found.channel.boards.includes(body.board)) {
    throw new InvalidProfileError(
      '$.board',
      `"${body.board}" is not mirrored on ${body.channel}; it has ${found.channel.boards.join(', ')}`,
    );
  }
  const needed = [pxeKernel, pxeInitramfs, ...(body.install === undefined ? [] : [diskImage])];
  const mirrored = new Set(found.source.artifacts.map((a) => a.name));
  const absent = needed.filter((name) => !mirrored.has(name));
  if (absent.length > 0) {
    throw new InvalidProfileError(
      body.install !== undefined && absent.includes(diskImage) ? '$.install' : '$',
      `the mirror is not configured to mirror ${absent.join(', ')}; add ${absent.length === 1 ? 'it' : 'them'} to the "artifacts" of source "${found.source.name}" in the config`,
    );
  }
  if (body.version === 'current') return;
  const states = await Promise.all(
    needed.map(async (artifact) => {
      const record = await ledger.getArtifact({
        source: found.source.name,
        channel: body.channel,
        board: body.board,
        version: body.version,
        artifact,
      });
      return { artifact, state: record?.state ?? 'not mirrored' };
    }),
  );
  const unverified = states.filter((s) => s.state !== 'verified');
  if (unverified.length > 0) {
    throw new InvalidProfileError(
      '$.version',
      `${body.channel}/${body.board} ${body.version} is not mirrored and verified ` +
        `(${unverified.map((s) => `${s.artifact}: ${s.state}`).join('; ')}); pin a version the mirror holds ` +
        '("cldist releases list"), or use "current"',
    );
  }
}

/** The version a profile boots now: its pin, or the mirror's current one (undefined before the first). */
export async function resolveProfileVersion(
  profile: Pick<BootProfile, 'channel' | 'board' | 'version'>,
  ledger: Pick<CurrentLedger, 'getCurrent'>,
  sources: readonly SourceConfig[],
): Promise<string | undefined> {
  if (profile.version !== 'current') return profile.version;
  const stream = profileStream(sources, profile.channel, profile.board);
  return stream === undefined ? undefined : (await ledger.getCurrent(stream))?.version;
}

/**
 * The source and channel a profile's bare channel name means: that channel of the first source, in config
 * order, that has one of that name (with one source, the channel itself).
 */
export function profileChannel(
  sources: readonly SourceConfig[],
  channel: string,
): { source: SourceConfig; channel: SourceChannel } | undefined {
  const source = sourceOfChannel(sources, channel);
  return source === undefined ? undefined : findChannel(sources, source, channel);
}

/** The ledger stream of a profile's channel and board. */
export function profileStream(
  sources: readonly SourceConfig[],
  channel: string,
  board: string,
): StreamRef | undefined {
  const source = sourceOfChannel(sources, channel);
  return source === undefined ? undefined : { source, channel, board };
}

/** The channel's folder in the mirror: `{mirrorPath}/{channel}`, or `{channel}` for a source at the root. */
export function channelFolder(sources: readonly SourceConfig[], channel: string): string {
  const found = profileChannel(sources, channel);
  const path = found?.source.mirrorPath ?? '';
  return path === '' ? channel : `${path}/${channel}`;
}
