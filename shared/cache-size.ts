/** Byte bounds for in-memory caches: what an entry costs, and a map that keeps within a budget. */
import { LRUCache } from 'lru-cache';

/** What V8 spends on an object or array beyond its contents, and on a string beyond its characters. */
const objectOverhead = 64;
const stringOverhead = 16;

/**
 * A cheap upper estimate of the heap a cached value holds: strings at two bytes a character (V8 keeps
 * ASCII at one), binary at its length, and a fixed overhead per object, array and property. It only needs
 * to be proportional and never far below the truth, so a byte bound on a cache is a bound on its memory.
 */
export function approximateBytes(value: unknown, depth = 0): number {
  if (typeof value === 'string') return stringOverhead + 2 * value.length;
  if (value instanceof Uint8Array) return objectOverhead + value.byteLength;
  if (typeof value !== 'object' || value === null || depth > 8) return 8;
  let bytes = objectOverhead;
  for (const [key, inner] of Object.entries(value)) {
    bytes += 8 + (Array.isArray(value) ? 0 : key.length) + approximateBytes(inner, depth + 1);
  }
  return bytes;
}

/**
 * A least-recently-used map bounded by the estimated bytes of its keys and values, holding `null` too
 * (lru-cache holds no null): for caches that remember "known to be absent". An entry larger than the
 * whole budget is not kept.
 */
export interface BoundedMap<V> {
  get(key: string): V | null | undefined;
  set(key: string, value: V | null): void;
  delete(key: string): void;
  clear(): void;
}

export function createBoundedMap<V>(maxBytes: number): BoundedMap<V> {
  const entries = new LRUCache<string, { value: V | null }>({
    maxSize: Math.max(1, maxBytes),
    sizeCalculation: (entry, key) => approximateBytes(key) + approximateBytes(entry.value),
  });
  return {
    get: (key) => entries.get(key)?.value,
    set(key, value) {
      if (maxBytes > 0) entries.set(key, { value });
    },
    delete: (key) => {
      entries.delete(key);
    },
    clear: () => entries.clear(),
  };
}
