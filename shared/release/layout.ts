import type { ChannelConfig } from '../config.ts';
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

function channelName(channel: ChannelConfig | string): string {
  return segment('channel', typeof channel === 'string' ? channel : channel.name);
}

/** The channel's release server root: `{channel}` in the configured template replaced, no trailing slash. */
export function channelBaseUrl(channel: ChannelConfig): string {
  return channel.baseUrl.replaceAll('{channel}', channelName(channel)).replace(/\/+$/, '');
}

/** Only `current/version.txt` is read from `current/`: everything else comes from the versioned folder. */
export function currentVersionUrl(channel: ChannelConfig, board: string): string {
  return `${channelBaseUrl(channel)}/${segment('board', board)}/current/version.txt`;
}

/**
 * Artifacts are fetched from the versioned folder, never from `current/`, which can move under a download.
 * Every name is checked, so a hostile version.txt can never steer a URL elsewhere.
 */
export function artifactUrls(
  channel: ChannelConfig,
  board: string,
  version: string,
  artifact: string,
): { url: string; signatureUrl: string } {
  const url = `${channelBaseUrl(channel)}/${segment('board', board)}/${checkedVersion(version)}/${segment('artifact', artifact)}`;
  return { url, signatureUrl: `${url}.sig` };
}

/** The mirror keeps the upstream layout, so the mirror itself is a valid release server. */
export function storeKey(
  channel: ChannelConfig | string,
  board: string,
  version: string,
  file: string,
): string {
  return `${channelName(channel)}/${segment('board', board)}/${checkedVersion(version)}/${segment('file', file)}`;
}

export function currentStoreKey(channel: ChannelConfig | string, board: string): string {
  return `${channelName(channel)}/${segment('board', board)}/current/version.txt`;
}
