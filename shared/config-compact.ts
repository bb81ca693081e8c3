import { isDeepStrictEqual } from 'node:util';
import { type CldistConfig, parseConfig } from './config.ts';

type Json = unknown;

function isRecord(value: Json): value is Record<string, Json> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** What of `value` differs from `base`, key by key for objects, whole for anything else; undefined if nothing. */
function dropDefaults(value: Json, base: Json): Json {
  if (!isRecord(value) || !isRecord(base)) return isDeepStrictEqual(value, base) ? undefined : value;
  const kept: Record<string, Json> = {};
  for (const [key, item] of Object.entries(value)) {
    const differs = key in base ? dropDefaults(item, base[key]) : item;
    if (differs !== undefined) kept[key] = differs;
  }
  return Object.keys(kept).length === 0 ? undefined : kept;
}

/**
 * The config without what its defaults give again. The functions' environment carries it, because Lambda
 * allows 4 KiB for all variables together and a handler parses the config, defaults included, at start.
 * It parses back to the same config because every field with a default has its own, equal to its
 * object's (test/unit/config-compact.test.ts checks the round trip); a field with no default is never
 * dropped unless its whole object equals the default object.
 */
export function compactConfig(config: CldistConfig): Json {
  return dropDefaults(config, parseConfig({})) ?? {};
}
