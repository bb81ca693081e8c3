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

interface Entry {
  answer: LookupAnswer;
  expiresAt: number;
}

/**
 * Source address → instance id, bounded and short-lived. Concurrent misses for one address share a
 * single lookup, so a booting instance's burst of requests costs the API one question. Failures are never
 * cached: the next request asks again.
 */
export function createInstanceCache(options: InstanceCacheOptions): InstanceCache {
  const clock = options.clock ?? Date.now;
  const entries = new Map<string, Entry>();
  const pending = new Map<string, Promise<LookupAnswer>>();
  let hits = 0;
  let misses = 0;

  const remember = (address: string, answer: LookupAnswer): void => {
    const ttl = answer.instanceId === undefined ? options.negativeTtlMs : options.ttlMs;
    if (ttl <= 0 || options.maxEntries <= 0) return;
    entries.delete(address);
    entries.set(address, { answer, expiresAt: clock() + ttl });
    while (entries.size > options.maxEntries) {
      const oldest = entries.keys().next();
      if (oldest.done === true) break;
      entries.delete(oldest.value);
    }
  };

  return {
    resolve(address, lookup) {
      const entry = entries.get(address);
      if (entry !== undefined) {
        if (entry.expiresAt > clock()) {
          hits += 1;
          // Re-inserting moves the entry to the young end of the Map's insertion order.
          entries.delete(address);
          entries.set(address, entry);
          return Promise.resolve(entry.answer);
        }
        entries.delete(address);
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
