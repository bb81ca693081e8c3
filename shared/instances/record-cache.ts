import { LRUCache } from 'lru-cache';
import { approximateBytes } from '../cache-size.ts';
import { createIdIndex, type IdIndex } from './id-index.ts';
import type { InstanceRecord, InstanceRepository } from './types.ts';

export interface RecordCacheOptions {
  /**
   * Bytes of records kept (estimated by `approximateBytes`, inline bodies included), least recently used
   * dropped first. Default 32 MiB.
   */
  maxRecordBytes?: number;
  /** Bytes of address-to-holder answers kept. Default 8 MiB. */
  maxAddressBytes?: number;
  /**
   * Every id that has a record (see `loadIdIndex`), kept current by this cache's writes. An id it does not
   * hold is answered as absent at once, with no ledger read, so an unknown id costs what a cached known
   * one does and the time of an answer says nothing about which ids exist. Unknown ids are not cached
   * either, so a flood of them cannot push real records out.
   */
  index?: IdIndex;
}

/** Read every id with a record into a fresh index; call before the cache serves its first request. */
export async function loadIdIndex(inner: Pick<InstanceRepository, 'listIds'>): Promise<IdIndex> {
  const index = createIdIndex();
  for await (const ids of inner.listIds()) for (const id of ids) index.add(id);
  return index;
}

/**
 * Keys read once lately, so that a read is kept only when its key is read a second time: a fleet far
 * larger than the cache, its instances each fetching once at boot, then neither pushes out the entries
 * read again and again nor leaves a cache entry to insert, evict and collect for every read. Forgets all
 * at once when full, which only costs those keys one more read.
 */
class Doorkeeper {
  private readonly seen = new Set<string>();
  private readonly max: number;

  constructor(max: number) {
    this.max = max;
  }

  admit(key: string): boolean {
    if (this.seen.delete(key)) return true;
    if (this.seen.size >= this.max) this.seen.clear();
    this.seen.add(key);
    return false;
  }
}

/**
 * An LRU of loaded values, absent ones included (lru-cache holds no null, so "known to be absent" is an
 * entry with no value in it), bounded in estimated bytes, key included. A read is kept from its key's
 * second read on (see `Doorkeeper`); what this process writes is kept at once. Concurrent loads of one
 * key share one read, and a load that started before its key was forgotten (a write happened meanwhile)
 * is returned but not kept.
 */
class LoadingCache<V> {
  private readonly entries: LRUCache<string, { value?: V }>;
  private readonly loads = new Map<string, Promise<V | undefined>>();
  private readonly maxBytes: number;
  private readonly doorkeeper: Doorkeeper;
  private generation = 0;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
    // About one key for every KiB the cache may hold: a few percent of its bound.
    this.doorkeeper = new Doorkeeper(Math.max(1024, Math.floor(maxBytes / 1024)));
    this.entries = new LRUCache({
      // lru-cache refuses a maxSize of 0; a cache of 0 bytes keeps nothing (see `remember`).
      maxSize: Math.max(1, maxBytes),
      sizeCalculation: (entry, key) => approximateBytes(key) + approximateBytes(entry.value),
    });
  }

  cached(key: string): { value?: V } | undefined {
    return this.entries.get(key);
  }

  remember(key: string, value: V | undefined): void {
    if (this.maxBytes === 0) return;
    // lru-cache drops an entry larger than the whole cache rather than keeping it; so does this.
    this.entries.set(key, value === undefined ? {} : { value });
  }

  forget(keys: readonly string[]): void {
    this.generation++;
    for (const key of keys) {
      this.entries.delete(key);
      this.loads.delete(key);
    }
  }

  /** The cached value, else one shared read; `keep` says whether what was read may be cached. */
  get(
    key: string,
    read: () => Promise<V | undefined>,
    keep: (value: V | undefined) => boolean,
  ): Promise<V | undefined> {
    const cached = this.entries.get(key);
    if (cached !== undefined) return Promise.resolve(cached.value);
    const pending = this.loads.get(key);
    if (pending !== undefined) return pending;
    const startedAt = this.generation;
    const load = read()
      .then((value) => {
        if (this.generation === startedAt && keep(value) && this.doorkeeper.admit(key)) {
          this.remember(key, value);
        }
        return value;
      })
      .finally(() => {
        if (this.loads.get(key) === load) this.loads.delete(key);
      });
    this.loads.set(key, load);
    return load;
  }
}

/**
 * A write-through cache of instance records and of which instance holds each source address, for the
 * single-machine shape only: there one process makes
 * every write (admin calls and consumption go through its API), so its memory is as current as the
 * ledger, and a config fetch costs no ledger read. One-time consumption still goes to the ledger as a
 * conditional write, so exactly one fetch wins, and so do record writes, so exactly one of racing PUTs
 * wins. Do not use it where several processes serve the same table (Lambda): another process's token
 * rotation or consumption would not be seen.
 */
export function withRecordCache(
  inner: InstanceRepository,
  options: RecordCacheOptions = {},
): InstanceRepository {
  const { index } = options;
  const records = new LoadingCache<InstanceRecord>(options.maxRecordBytes ?? 32 * 1024 * 1024);
  /** Source address to holder (none: known to be nobody's), so a metadata request costs no ledger read. */
  const holders = new LoadingCache<string>(options.maxAddressBytes ?? 8 * 1024 * 1024);

  return {
    get(id) {
      const cached = records.cached(id);
      if (cached !== undefined) return Promise.resolve(cached.value);
      if (index !== undefined && !index.has(id)) return Promise.resolve(undefined);
      return records.get(
        id,
        () => inner.get(id),
        (record) => record !== undefined || index === undefined,
      );
    },

    async put(record, replaces) {
      records.forget([record.id]);
      await inner.put(record, replaces);
      index?.add(record.id);
      records.remember(record.id, record);
    },

    async getMany(ids) {
      const found = new Map<string, InstanceRecord>();
      const ask: string[] = [];
      for (const id of ids) {
        const cached = records.cached(id);
        if (cached !== undefined) {
          if (cached.value !== undefined) found.set(id, cached.value);
        } else if (index === undefined || index.has(id)) ask.push(id);
      }
      if (ask.length > 0) for (const [id, record] of await inner.getMany(ask)) found.set(id, record);
      return found;
    },

    // Not remembered: a bulk load of a fleet would push every record that is being fetched out of the LRU.
    async putBatch(entries) {
      const ids = entries.map(({ record }) => record.id);
      records.forget(ids);
      await inner.putBatch(entries);
      for (const id of ids) index?.add(id);
    },

    async delete(id, replaces) {
      records.forget([id]);
      await inner.delete(id, replaces);
      index?.remove(id);
      if (index === undefined) records.remember(id, undefined);
    },

    async consume(id, tokenHash, at) {
      const before = records.cached(id)?.value;
      records.forget([id]);
      const won = await inner.consume(id, tokenHash, at);
      if (won && before !== undefined) records.remember(id, { ...before, consumedAt: at.toISOString() });
      return won;
    },

    ...cachedAddresses(inner, holders),
    list: (limit, after, prefix) => inner.list(limit, after, prefix),
    recordFetch: (id, entry) => inner.recordFetch(id, entry),
    listAudit: (id, limit) => inner.listAudit(id, limit),
    listIds: () => inner.listIds(),
    deleteAuditBefore: (cutoff, daysBack) => inner.deleteAuditBefore(cutoff, daysBack),
    flush: () => inner.flush(),
    close: () => inner.close(),
  };
}

/** Who holds a source address, remembered by the same single-writer reasoning as the records. */
function cachedAddresses(
  inner: InstanceRepository,
  holders: LoadingCache<string>,
): Pick<InstanceRepository, 'claimAddresses' | 'releaseAddresses' | 'instanceAtAddress'> {
  return {
    async claimAddresses(id, addresses) {
      holders.forget(addresses);
      const conflict = await inner.claimAddresses(id, addresses);
      if (conflict === undefined) for (const address of addresses) holders.remember(address, id);
      return conflict;
    },

    async releaseAddresses(id, addresses) {
      holders.forget(addresses);
      await inner.releaseAddresses(id, addresses);
    },

    instanceAtAddress: (address) =>
      holders.get(
        address,
        () => inner.instanceAtAddress(address),
        () => true,
      ),
  };
}
