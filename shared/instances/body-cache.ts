/** A body key is never written twice, so a cached body under a key is never stale. */
export interface BodyCache {
  get(key: string): Uint8Array | undefined;
  set(key: string, body: Uint8Array): void;
}

/** Bounded by bytes, least recently used first out, so a fleet of large configs cannot exhaust memory. */
export function createBodyCache(maxBytes = 64 * 1024 * 1024): BodyCache {
  const entries = new Map<string, Uint8Array>();
  let bytes = 0;
  return {
    get(key) {
      const body = entries.get(key);
      if (body !== undefined) {
        entries.delete(key);
        entries.set(key, body);
      }
      return body;
    },
    set(key, body) {
      if (body.byteLength > maxBytes || entries.has(key)) return;
      entries.set(key, body);
      bytes += body.byteLength;
      for (const [oldKey, oldBody] of entries) {
        if (bytes <= maxBytes) break;
        entries.delete(oldKey);
        bytes -= oldBody.byteLength;
      }
    },
  };
}
