import { LRUCache } from 'lru-cache';

/** What the API said about an address: the instance holding it, or that none does. */
export type LookupAnswer = { instanceId: string } | { instanceId: undefined };

export interface InstanceCacheOptions {
  /** How long a found instance is trusted without asking again: the longest an address move can lag. */
  ttlMs: number;
  /** How long "no instance here" is remembered: short, so a just-registered instance is soon served. */
  negativeTtlMs: number;
  /** Entries kept at most; the least recently used go first. */
  maxEntries: number;
  clock?: () => number;
}

export interface InstanceCacheStats {
  hits: number;
  misses: number;
  size: number;
}

export interface InstanceCache {
  /** The answer for `address`, from the cache or from `lookup` (one call per address at a time). */
  resolve(address: string, lookup: (address: string) => Promise<LookupAnswer>): Promise<LookupAnswer>;
  clear(): void;
  stats(): InstanceCacheStats;
}

/**
 * Source address → instance id, bounded and short-lived. Concurrent misses for one address share a
 * single lookup, so a booting instance's burst of requests costs the API one question. Failures are never
 * cached: the next request asks again.
 */
export function createInstanceCache(options: InstanceCacheOptions): InstanceCache {
  const clock = options.clock ?? Date.now;
  const enabled = options.maxEntries > 0 && (options.ttlMs > 0 || options.negativeTtlMs > 0);
  const entries = new LRUCache<string, LookupAnswer>({
    max: Math.max(1, options.maxEntries),
    ttl: Math.max(1, options.ttlMs),
    // Read the injected clock on every check: lru-cache otherwise reuses one reading for a millisecond.
    ttlResolution: 0,
    perf: { now: clock },
  });
  const pending = new Map<string, Promise<LookupAnswer>>();
  let hits = 0;
  let misses = 0;

  const remember = (address: string, answer: LookupAnswer): void => {
    const ttl = answer.instanceId === undefined ? options.negativeTtlMs : options.ttlMs;
    if (!enabled || ttl <= 0) return;
    entries.set(address, answer, { ttl });
  };

  return {
    resolve(address, lookup) {
      const cached = entries.get(address);
      if (cached !== undefined) {
        hits += 1;
        return Promise.resolve(cached);
      }
      misses += 1;
      const inFlight = pending.get(address);
      if (inFlight !== undefined) return inFlight;
      const asked = lookup(address)
        .then((answer) => {
          remember(address, answer);
          return answer;
        })
        .finally(() => pending.delete(address));
      pending.set(address, asked);
      return asked;
    },
    clear() {
      entries.clear();
    },
    stats: () => ({ hits, misses, size: entries.size }),
  };
}
