import { createHash } from 'node:crypto';
import { createBodyCache } from '../instances/service.ts';
import type { InstanceRecord } from '../instances/types.ts';

/**
 * The spec version of the served wrapper. The wrapper uses only `ignition.config.merge` with `data:`
 * sources and `verification.hash`, all in spec 3.0.0, and every Ignition release that reads spec 3
 * accepts 3.0.0; each merged config keeps its own version, so a client's own limit applies to the user's
 * config exactly as it would without the wrapper.
 */
export const wrapperSpecVersion = '3.0.0';

export interface ServedConfig {
  body: Uint8Array;
  etag: string;
}

function dataUrl(bytes: Uint8Array): string {
  return `data:;base64,${Buffer.from(bytes).toString('base64')}`;
}

function sha512(bytes: Uint8Array): string {
  return `sha512-${createHash('sha512').update(bytes).digest('hex')}`;
}

/** The wrapper: the base first, then the user's config, so the user's settings win where both set one. */
export function mergeWrapper(base: Uint8Array, user: Uint8Array): Uint8Array {
  const wrapper = {
    ignition: {
      version: wrapperSpecVersion,
      config: {
        merge: [
          { source: dataUrl(base), verification: { hash: sha512(base) } },
          { source: dataUrl(user), verification: { hash: sha512(user) } },
        ],
      },
    },
  };
  return Buffer.from(JSON.stringify(wrapper), 'utf8');
}

/**
 * What an Ignition config is served as: with a base config, the wrapper that makes the client merge the
 * base and the user's untouched bytes; without one, the user's bytes. Legacy 2.x configs and
 * cloud-configs are served as stored: a 2.x client cannot read a 3.x wrapper, and cloud-config has no
 * merge. Wrappers are cached by ETag, a hash of the body (inline bodies have no store key), so a cached
 * wrapper is never stale; `maxCacheBytes` bounds them.
 */
export function createConfigMerger(
  base: Record<string, unknown> | undefined,
  maxCacheBytes: number,
): (record: InstanceRecord, body: Uint8Array) => ServedConfig {
  if (base === undefined) return (record, body) => ({ body, etag: record.etag });
  const baseBytes = Buffer.from(JSON.stringify(base), 'utf8');
  const baseTag = createHash('sha256').update(baseBytes).digest('hex').slice(0, 16);
  const cache = createBodyCache(maxCacheBytes);
  return (record, body) => {
    if (record.kind !== 'ignition' || record.specVersion?.startsWith('2.') === true) {
      return { body, etag: record.etag };
    }
    const etag = `"${record.etag.replaceAll('"', '').slice(0, 16)}${baseTag}"`;
    const cached = cache.get(record.etag);
    if (cached !== undefined) return { body: cached, etag };
    const wrapped = mergeWrapper(baseBytes, body);
    cache.set(record.etag, wrapped);
    return { body: wrapped, etag };
  };
}
