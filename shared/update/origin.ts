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
 * Update payloads live under `update/` in the mirror store, beside the sources' folders: a source whose
 * mirror path is `update`, or a channel named `update` of a source at the store's root, would share their
 * keys. Checked at start, naming the field; `legacyLayout` names the old top-level `channels` field.
 */
export function updateLayoutProblem(config: CldistConfig, legacyLayout = false): string | undefined {
  if (config.update === undefined) return undefined;
  const advice = 'is the store folder of update payloads';
  for (const [i, source] of config.sources.entries()) {
    if (source.mirrorPath === UPDATE_PAYLOAD_PREFIX) {
      return `sources.${i}.mirrorPath: "${UPDATE_PAYLOAD_PREFIX}" (the source's name by default) ${advice}; give the source another mirror path, or leave update out`;
    }
    if (source.mirrorPath !== '') continue;
    const index = source.channels.findIndex((channel) => channel.name === UPDATE_PAYLOAD_PREFIX);
    if (index >= 0) {
      const field = `${legacyLayout ? '' : `sources.${i}.`}channels.${index}.name`;
      return `${field}: "${UPDATE_PAYLOAD_PREFIX}" ${advice}; name the channel otherwise, or leave update out`;
    }
  }
  return undefined;
}
