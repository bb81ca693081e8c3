import { LRUCache } from 'lru-cache';

/** A body key is never written twice, so a cached body under a key is never stale. */
export interface BodyCache {
  get(key: string): Uint8Array | undefined;
  set(key: string, body: Uint8Array): void;
}

/** Bounded by bytes, least recently used first out, so a fleet of large configs cannot exhaust memory. */
export function createBodyCache(maxBytes = 64 * 1024 * 1024): BodyCache {
  const entries = new LRUCache<string, Uint8Array>({
    maxSize: maxBytes,
    // lru-cache refuses sizes below 1; an empty body still takes an entry.
    sizeCalculation: (body) => Math.max(1, body.byteLength),
  });
  return {
    get: (key) => entries.get(key),
    set(key, body) {
      if (body.byteLength > maxBytes || entries.has(key)) return;
      entries.set(key, body);
    },
  };
}
