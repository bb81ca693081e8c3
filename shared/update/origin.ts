import type { CldistConfig, UpdateConfig } from '../config.ts';
import { MAIN_UPDATE_PAYLOAD, UPDATE_PAYLOAD_PREFIX } from './payload-record.ts';

/** The URL of one payload of one release at the configured update origin. */
export function updatePayloadUrl(config: UpdateConfig, board: string, version: string, name: string): string {
  const folder = config.origin.replaceAll('{board}', board).replaceAll('{version}', version);
  return new URL(name, folder).toString();
}

/** Every payload a release gets a job for: the main payload first, then the configured ones. */
export function configuredPayloads(config: UpdateConfig): string[] {
  return [MAIN_UPDATE_PAYLOAD, ...config.payloads];
}

/**
 * Update payloads live under `update/` in the mirror store, beside the channels' folders: a channel named
 * `update` would share their keys. Checked at start, naming the field.
 */
export function updateLayoutProblem(config: CldistConfig): string | undefined {
  if (config.update === undefined) return undefined;
  const index = config.channels.findIndex((channel) => channel.name === UPDATE_PAYLOAD_PREFIX);
  return index < 0
    ? undefined
    : `channels.${index}.name: "${UPDATE_PAYLOAD_PREFIX}" is the store folder of update payloads; name the channel otherwise, or leave update out`;
}
