import * as z from 'zod';

/**
 * What the mirror follows: one entry per upstream (Flatcar, CoreOS, a private build), each with its own
 * channels, boards per channel, artifacts, trusted keys and place in the mirror. Two sources may share a
 * channel name (`stable`): every ledger key, job, event and store key carries the source.
 */

export const plainName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'a lower-case name of letters, digits, ".", "_" or "-"');

const fileName = z
  .string()
  .regex(/^[A-Za-z0-9{][A-Za-z0-9._+{}-]{0,254}$/, 'a plain file name, without "/" or ".."')
  .refine((name) => !name.includes('..'), 'a plain file name, without ".."')
  .refine(
    (name) => name.replaceAll('{prefix}', '').match(/[{}]/) === null,
    'a file name where "{prefix}" is the only placeholder',
  );

const boardName = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, 'a board name such as "amd64-usr"');

/** `{channel}` (and `{board}` when the server's layout puts it elsewhere) stand for names in the URL. */
export const httpUrlTemplate = z
  .string()
  .refine((value) => {
    try {
      const url = new URL(value.replaceAll('{channel}', 'channel').replaceAll('{board}', 'board'));
      return url.protocol === 'https:' || url.protocol === 'http:';
    } catch {
      return false;
    }
  }, 'an http(s) URL, where {channel} stands for the channel name (and {board} for the board, if given)')
  .transform((value) => value.replace(/\/+$/, ''));

export const fingerprint = z
  .string()
  .transform((value) => value.replaceAll(' ', '').toUpperCase())
  .pipe(
    z.string().regex(/^[0-9A-F]{40}$|^[0-9A-F]{64}$/, 'a full hex key fingerprint (40 or 64 hex digits)'),
  );

export const flatcarBaseUrl = 'https://{channel}.release.flatcar-linux.net';
export const flatcarFingerprint = 'F88CFEDEFF29A5B4D9523864E25D9AED0593B34A';
export const coreosFingerprint = '04127D0BFABEC8871FFB2CCE50E0885593D2DCB4';

export const versionKeys = ['FLATCAR_VERSION_ID', 'COREOS_VERSION_ID'] as const;
export type VersionKey = (typeof versionKeys)[number];

/**
 * A yearly Flatcar LTS stream (`lts-2024`, `current-2024`) lives on the LTS release server beside the
 * `lts` channel, with its version file in `{board}/current-{year}/`; the versioned folders are shared.
 * This is the layout Flatcar's own CI reads (flatcar/scripts, `.github/workflows/…`:
 * `https://lts.release.flatcar-linux.net/amd64-usr/current-${year}`).
 */
const ltsStream = /^(?:lts|current)-(\d{4})$/;

export const channelSchema = z.strictObject({
  name: plainName,
  /** Boards this channel is mirrored for; a board the channel lacks upstream is `poll.not_published`. */
  boards: z
    .array(boardName)
    .min(1)
    .default(['amd64-usr'])
    .refine((boards) => new Set(boards).size === boards.length, 'unique board names'),
  /** Overrides the source's `baseUrl` for this channel. */
  baseUrl: httpUrlTemplate.optional(),
  /** The channel name in upstream URLs (`{channel}`); default the name, `lts` for an LTS stream. */
  upstream: plainName.optional(),
  /** The folder holding upstream's `version.txt`; default `current`, `current-{year}` for an LTS stream. */
  current: plainName.optional(),
  /**
   * Retention: keep this many of the newest mirrored releases per board of the channel and delete older
   * ones from the mirror and the ledger. Unset keeps every release (or the source's setting, on a channel).
   */
  keepReleases: z.number().int().min(1).max(10_000).optional(),
});

const artifactSchema = z.strictObject({
  /** `{prefix}` stands for `flatcar` or `coreos`, from the source's `versionKey`. */
  name: fileName,
  /** A release is mirrored only when every required artifact is verified; optional ones may be missing. */
  required: z.boolean().default(true),
});

/**
 * What `flatcar-install -b <mirror>` downloads comes last: the mirror is then a release server for bare
 * metal too.
 */
export const defaultArtifacts = [
  { name: 'version.txt', required: true },
  { name: '{prefix}_production_openstack_image.img.bz2', required: true },
  { name: '{prefix}_production_pxe.vmlinuz', required: true },
  { name: '{prefix}_production_pxe_image.cpio.gz', required: true },
  { name: '{prefix}_production_image.bin.bz2', required: true },
];

export const defaultChannelNames = ['alpha', 'beta', 'stable', 'lts'];

/** One upstream. `retention` and other per-source settings join this object. */
export const sourceSchema = z.strictObject({
  name: plainName,
  /** `{channel}` is replaced by the channel's upstream name; the board is appended unless `{board}` is given. */
  baseUrl: httpUrlTemplate.default(flatcarBaseUrl),
  /** The line of `version.txt` that names the release; a file with the other one is refused. */
  versionKey: z.enum(versionKeys).default('FLATCAR_VERSION_ID'),
  channels: z
    .array(channelSchema)
    .min(1)
    .default(defaultChannelNames.map((name) => ({ name, boards: ['amd64-usr'] })))
    .refine(
      (channels) => new Set(channels.map((c) => c.name)).size === channels.length,
      'unique channel names',
    ),
  artifacts: z
    .array(artifactSchema)
    .min(1)
    .default(defaultArtifacts)
    .refine(
      (artifacts) => new Set(artifacts.map((a) => a.name)).size === artifacts.length,
      'unique artifact names',
    )
    .refine(
      (artifacts) => artifacts.every((a) => !a.name.endsWith('.sig')),
      'no ".sig" files: they are implied',
    ),
  /**
   * Primary key fingerprints this source accepts signatures from, each one of `keyring.trustedFingerprints`.
   * Absent: every trusted key.
   */
  keys: z.array(fingerprint).min(1).optional(),
  /**
   * The folder of this source in the mirror: `flatcar` gives `flatcar/stable/amd64-usr/<version>/…`.
   * Default the source's name; "" (only for a single source) keeps the channels at the mirror's root.
   */
  mirrorPath: z.union([z.literal(''), plainName]).optional(),
  /**
   * Retention: keep this many of the newest mirrored releases per channel and board and delete older ones
   * from the mirror and the ledger; a channel's own setting wins. Unset keeps every release.
   */
  keepReleases: z.number().int().min(1).max(10_000).optional(),
});

export type SourceInput = z.input<typeof sourceSchema>;
type ParsedSource = z.output<typeof sourceSchema>;

/** A channel with its upstream name and version folder filled in. */
export type SourceChannel = Omit<z.output<typeof channelSchema>, 'upstream' | 'current'> & {
  upstream: string;
  current: string;
};

/** A source as every reader sees it: defaults filled in, `{prefix}` replaced, the mirror path decided. */
export type SourceConfig = Omit<ParsedSource, 'channels' | 'mirrorPath'> & {
  channels: SourceChannel[];
  mirrorPath: string;
};

/** `flatcar` for Flatcar's version key, `coreos` for CoreOS's: what `{prefix}` stands for. */
export function imagePrefix(versionKey: VersionKey): string {
  return versionKey === 'COREOS_VERSION_ID' ? 'coreos' : 'flatcar';
}

function resolveChannel(channel: z.output<typeof channelSchema>): SourceChannel {
  const stream = ltsStream.exec(channel.name);
  return {
    ...channel,
    upstream: channel.upstream ?? (stream === null ? channel.name : 'lts'),
    current: channel.current ?? (stream === null ? 'current' : `current-${stream[1]}`),
  };
}

export function resolveSource(source: ParsedSource): SourceConfig {
  const prefix = imagePrefix(source.versionKey);
  return {
    ...source,
    channels: source.channels.map(resolveChannel),
    artifacts: source.artifacts.map((a) => ({ ...a, name: a.name.replaceAll('{prefix}', prefix) })),
    mirrorPath: source.mirrorPath ?? source.name,
  };
}

/** The old top-level keys, still read: one source, named `flatcar`, at the mirror's root as before. */
export const legacyKeys = ['channels', 'boards', 'artifacts'] as const;

export const legacyChannelSchema = z.strictObject({
  name: plainName,
  baseUrl: httpUrlTemplate.default(flatcarBaseUrl),
  /**
   * Retention: keep this many of the newest mirrored releases per board of the channel and delete older
   * ones from the mirror and the ledger. Unset keeps every release (or the source's setting, on a channel).
   */
  keepReleases: z.number().int().min(1).max(10_000).optional(),
});

export const legacyShape = {
  channels: z.array(legacyChannelSchema).min(1).optional(),
  boards: z.array(boardName).min(1).optional(),
  artifacts: z.array(artifactSchema).min(1).optional(),
};

interface LegacyParts {
  channels?: Array<{ name: string; baseUrl: string; keepReleases?: number | undefined }> | undefined;
  boards?: string[] | undefined;
  artifacts?: Array<{ name: string; required: boolean }> | undefined;
}

/** The `sources` entry that the old top-level `channels`, `boards` and `artifacts` mean. */
export function legacySource(legacy: LegacyParts): SourceInput {
  const boards = legacy.boards ?? ['amd64-usr'];
  const channels: NonNullable<LegacyParts['channels']> =
    legacy.channels ?? defaultChannelNames.map((name) => ({ name, baseUrl: flatcarBaseUrl }));
  return {
    name: 'flatcar',
    mirrorPath: '',
    channels: channels.map((c) => ({
      name: c.name,
      boards,
      ...(c.baseUrl === flatcarBaseUrl ? {} : { baseUrl: c.baseUrl }),
      ...(c.keepReleases === undefined ? {} : { keepReleases: c.keepReleases }),
    })),
    artifacts: legacy.artifacts ?? defaultArtifacts,
  };
}

export interface SourceTarget {
  source: SourceConfig;
  channel: SourceChannel;
  board: string;
}

/** Every source, channel and board the poller reads, in config order. */
export function pollTargets(sources: SourceConfig[]): SourceTarget[] {
  return sources.flatMap((source) =>
    source.channels.flatMap((channel) => channel.boards.map((board) => ({ source, channel, board }))),
  );
}

export function findSource(sources: readonly SourceConfig[], name: string): SourceConfig | undefined {
  return sources.find((s) => s.name === name);
}

export function findChannel(
  sources: readonly SourceConfig[],
  sourceName: string,
  channelName: string,
): { source: SourceConfig; channel: SourceChannel } | undefined {
  const source = findSource(sources, sourceName);
  const channel = source?.channels.find((c) => c.name === channelName);
  return source === undefined || channel === undefined ? undefined : { source, channel };
}

/**
 * What a bare channel name (an Omaha group's channel, a boot profile's) means: that channel of the first
 * source, in config order, that has one of that name. With one source this is the channel itself.
 */
export function sourceOfChannel(sources: readonly SourceConfig[], channelName: string): string | undefined {
  return sources.find((s) => s.channels.some((c) => c.name === channelName))?.name;
}

/** Every channel name of every source, each once, in config order: the names bare-channel readers know. */
export function channelNames(sources: readonly SourceConfig[]): string[] {
  return [...new Set(sources.flatMap((s) => s.channels.map((c) => c.name)))];
}
