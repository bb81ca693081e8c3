import { LRUCache } from 'lru-cache';
import { createIdIndex, type IdIndex } from './id-index.ts';
import type { InstanceRecord, InstanceRepository } from './types.ts';

export interface RecordCacheOptions {
  /** Records kept, least recently used dropped first. */
  maxEntries?: number;
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
  const maxEntries = options.maxEntries ?? 100_000;
  const { index } = options;
  // lru-cache holds no null, so "known to be absent" is an entry with no record in it.
  const cache = new LRUCache<string, { record?: InstanceRecord }>({ max: maxEntries });
  const loading = new Map<string, Promise<InstanceRecord | undefined>>();
  let generation = 0;
  /** Source address to holder (none: known to be nobody's), so a metadata request costs no ledger read. */
  const holders = new LRUCache<string, { holder?: string }>({ max: maxEntries });
  const holderLoads = new Map<string, Promise<string | undefined>>();
  let addressGeneration = 0;
  const rememberHolder = (address: string, holder: string | undefined) => {
    holders.set(address, holder === undefined ? {} : { holder });
  };
  const forgetHolders = (addresses: readonly string[]) => {
    addressGeneration++;
    for (const address of addresses) {
      holders.delete(address);
      holderLoads.delete(address);
    }
  };

  const remember = (id: string, record: InstanceRecord | undefined) => {
    cache.set(id, record === undefined ? {} : { record });
  };
  const forget = (id: string) => {
    generation++;
    cache.delete(id);
    loading.delete(id);
  };

  return {
    get(id) {
      const cached = cache.get(id);
      if (cached !== undefined) return Promise.resolve(cached.record);
      if (index !== undefined && !index.has(id)) return Promise.resolve(undefined);
      const pending = loading.get(id);
      if (pending !== undefined) return pending;
      const startedAt = generation;
      const load = inner
        .get(id)
        .then((record) => {
          if (generation === startedAt && (record !== undefined || index === undefined)) {
            remember(id, record);
          }
          return record;
        })
        .finally(() => {
          if (loading.get(id) === load) loading.delete(id);
        });
      loading.set(id, load);
      return load;
    },

    async put(record, replaces) {
      forget(record.id);
      await inner.put(record, replaces);
      index?.add(record.id);
      remember(record.id, record);
    },

    async delete(id, replaces) {
      forget(id);
      await inner.delete(id, replaces);
      index?.remove(id);
      if (index === undefined) remember(id, undefined);
    },

    async consume(id, tokenHash, at) {
      const before = cache.get(id)?.record;
      forget(id);
      const won = await inner.consume(id, tokenHash, at);
      if (won && before !== undefined) remember(id, { ...before, consumedAt: at.toISOString() });
      return won;
    },

    async claimAddresses(id, addresses) {
      forgetHolders(addresses);
      const conflict = await inner.claimAddresses(id, addresses);
      if (conflict === undefined) for (const address of addresses) rememberHolder(address, id);
      return conflict;
    },

    async releaseAddresses(id, addresses) {
      forgetHolders(addresses);
      await inner.releaseAddresses(id, addresses);
    },

    instanceAtAddress(address) {
      const cached = holders.get(address);
      if (cached !== undefined) return Promise.resolve(cached.holder);
      const pending = holderLoads.get(address);
      if (pending !== undefined) return pending;
      const startedAt = addressGeneration;
      const load = inner
        .instanceAtAddress(address)
        .then((holder) => {
          if (addressGeneration === startedAt) rememberHolder(address, holder);
          return holder;
        })
        .finally(() => {
          if (holderLoads.get(address) === load) holderLoads.delete(address);
        });
      holderLoads.set(address, load);
      return load;
    },

    list: (limit, after, prefix) => inner.list(limit, after, prefix),
    recordFetch: (id, entry) => inner.recordFetch(id, entry),
    listAudit: (id, limit) => inner.listAudit(id, limit),
    listIds: () => inner.listIds(),
    deleteAuditBefore: (cutoff, daysBack) => inner.deleteAuditBefore(cutoff, daysBack),
    flush: () => inner.flush(),
    close: () => inner.close(),
  };
}
