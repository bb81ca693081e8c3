import type { UpdateConfig } from '../config.ts';
import { MAIN_UPDATE_PAYLOAD } from './payload-record.ts';

/** The URL of one payload of one release at the configured update origin. */
export function updatePayloadUrl(config: UpdateConfig, board: string, version: string, name: string): string {
  const folder = config.origin.replaceAll('{board}', board).replaceAll('{version}', version);
  return new URL(name, folder).toString();
}

/** Every payload a release gets a job for: the main payload first, then the configured ones. */
export function configuredPayloads(config: UpdateConfig): string[] {
  return [MAIN_UPDATE_PAYLOAD, ...config.payloads];
}
