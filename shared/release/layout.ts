import type { SourceChannel, SourceConfig } from '../config-sources.ts';
import { PermanentError } from '../errors.ts';
import { versionPattern } from '../messages.ts';

const segmentPattern = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,254}$/;

function segment(kind: string, value: string): string {
  if (!segmentPattern.test(value) || value.includes('..')) {
    throw new PermanentError('bad-path-segment', `${kind} ${JSON.stringify(value)} is not a plain name`);
  }
  return value;
}

function checkedVersion(version: string): string {
  if (!versionPattern.test(version)) {
    throw new PermanentError(
      'bad-path-segment',
      `version ${JSON.stringify(version)} is not digits and dots (e.g. 3510.2.8)`,
    );
  }
  return version;
}

function channelName(channel: SourceChannel | string): string {
  return segment('channel', typeof channel === 'string' ? channel : channel.name);
}

/**
 * The folder of one board on the channel's release server: `{channel}` in the template replaced by the
 * channel's upstream name, and `{board}` by the board (appended when the template does not place it).
 */
export function boardBaseUrl(
  source: Pick<SourceConfig, 'baseUrl'>,
  channel: SourceChannel,
  board: string,
): string {
  const template = (channel.baseUrl ?? source.baseUrl).replace(/\/+$/, '');
  const withChannel = template.replaceAll('{channel}', segment('channel', channel.upstream));
  const checkedBoard = segment('board', board);
  return withChannel.includes('{board}')
    ? withChannel.replaceAll('{board}', checkedBoard)
    : `${withChannel}/${checkedBoard}`;
}

/** The origin the channel's files may come from; a redirect elsewhere is refused. */
export function channelOrigin(
  source: Pick<SourceConfig, 'baseUrl'>,
  channel: SourceChannel,
  board: string,
): string {
  return new URL(boardBaseUrl(source, channel, board)).origin;
}

/**
 * Only the channel's version file is read from its `current` folder (`current-2024` for an LTS stream):
 * everything else comes from the versioned folder.
 */
export function currentVersionUrl(
  source: Pick<SourceConfig, 'baseUrl'>,
  channel: SourceChannel,
  board: string,
): string {
  return `${boardBaseUrl(source, channel, board)}/${segment('current folder', channel.current)}/version.txt`;
}

/**
 * Artifacts are fetched from the versioned folder, never from `current/`, which can move under a download.
 * Every name is checked, so a hostile version.txt can never steer a URL elsewhere.
 */
export function artifactUrls(
  source: Pick<SourceConfig, 'baseUrl'>,
  channel: SourceChannel,
  board: string,
  version: string,
  artifact: string,
): { url: string; signatureUrl: string } {
  const url = `${boardBaseUrl(source, channel, board)}/${checkedVersion(version)}/${segment('artifact', artifact)}`;
  return { url, signatureUrl: `${url}.sig` };
}

/** Where a source's channels sit in the mirror: `flatcar/`, or the root for an empty mirror path. */
function mirrorFolder(mirrorPath: string): string {
  return mirrorPath === '' ? '' : `${segment('mirror path', mirrorPath)}/`;
}

/**
 * The mirror keeps the upstream layout under the source's mirror path (`flatcar/stable/amd64-usr/…`), so
 * each source's folder is itself a valid release server.
 */
export function storeKey(
  mirrorPath: string,
  channel: SourceChannel | string,
  board: string,
  version: string,
  file: string,
): string {
  return `${mirrorFolder(mirrorPath)}${channelName(channel)}/${segment('board', board)}/${checkedVersion(version)}/${segment('file', file)}`;
}

export function currentStoreKey(mirrorPath: string, channel: SourceChannel | string, board: string): string {
  return `${mirrorFolder(mirrorPath)}${channelName(channel)}/${segment('board', board)}/current/version.txt`;
}

/** The source a ledger record or job names, or a permanent error: its work cannot go anywhere. */
export function sourceNamed(sources: SourceConfig[], name: string): SourceConfig {
  const source = sources.find((s) => s.name === name);
  if (source === undefined) {
    throw new PermanentError('unknown-source', `source "${name}" is not configured`);
  }
  return source;
}

/** A file of a release in the store, under its source's mirror path. */
export function releaseStoreKey(
  sources: SourceConfig[],
  release: { source: string; channel: string; board: string; version: string },
  file: string,
): string {
  const { mirrorPath } = sourceNamed(sources, release.source);
  return storeKey(mirrorPath, release.channel, release.board, release.version, file);
}
