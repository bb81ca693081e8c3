import { LRUCache } from 'lru-cache';
import type { ChannelCurrent, UpdateGroup } from './groups.ts';
import type { UpdatePayloadLookup, UpdatePayloadRecord } from './payload-record.ts';

/**
 * What an update check reads, each behind a short-lived bounded cache, so that a fleet checking in costs
 * memory reads and not one ledger read per request. Groups and the channels' current versions change
 * rarely and a check a few seconds late is harmless: instances check every 45 minutes or so. Verified
 * payload facts never change once recorded; "not verified yet" is kept as briefly as the rest.
 */
export interface UpdateSources {
  getGroup(name: string): Promise<UpdateGroup | undefined>;
  getCurrent(channel: string, board: string): Promise<ChannelCurrent | undefined>;
  payloadsFor(board: string, version: string): Promise<readonly UpdatePayloadRecord[]>;
  /** Forgets a group at once (after an admin write through this process). */
  forgetGroup(name: string): void;
}

export interface UpdateSourceReaders {
  getGroup(name: string): Promise<UpdateGroup | undefined>;
  getCurrent(channel: string, board: string): Promise<ChannelCurrent | undefined>;
  payloads: UpdatePayloadLookup;
}

export interface UpdateCacheOptions {
  /** How long a read is reused; 0 reads the ledger on every check. */
  ttlMs?: number;
  /** Entries per cache, least recently used dropped first. */
  maxEntries?: number;
}

/** Default reuse of a group, a current version or payload facts. */
export const defaultUpdateCacheTtlMs = 5000;

/** lru-cache holds no `undefined`, so "known to be absent" is a box with nothing in it. */
interface Box<T> {
  value?: T;
}

function cached<T>(
  load: (key: string) => Promise<T | undefined>,
  options: Required<UpdateCacheOptions>,
): { get(key: string): Promise<T | undefined>; delete(key: string): void } {
  if (options.ttlMs === 0) return { get: load, delete: () => undefined };
  const cache = new LRUCache<string, Box<T>>({
    max: options.maxEntries,
    ttl: options.ttlMs,
    // One read per key however many checks arrive while it runs.
    fetchMethod: async (key) => {
      const value = await load(key);
      return value === undefined ? {} : { value };
    },
  });
  return {
    async get(key) {
      return (await cache.fetch(key))?.value;
    },
    delete: (key) => {
      cache.delete(key);
    },
  };
}

export function cachedUpdateSources(
  readers: UpdateSourceReaders,
  options: UpdateCacheOptions = {},
): UpdateSources {
  const settings = {
    ttlMs: options.ttlMs ?? defaultUpdateCacheTtlMs,
    maxEntries: options.maxEntries ?? 1000,
  };
  const groups = cached((name) => readers.getGroup(name), settings);
  const current = cached((key) => {
    const [channel = '', board = ''] = key.split('\n');
    return readers.getCurrent(channel, board);
  }, settings);
  const payloads = cached(async (key) => {
    const [board = '', version = ''] = key.split('\n');
    return readers.payloads.payloadsFor(board, version);
  }, settings);
  return {
    getGroup: (name) => groups.get(name),
    getCurrent: (channel, board) => current.get(`${channel}\n${board}`),
    payloadsFor: async (board, version) => (await payloads.get(`${board}\n${version}`)) ?? [],
    forgetGroup: (name) => groups.delete(name),
  };
}

/** The lookup to use until verified payloads are recorded: nothing is ever offered. */
export const noVerifiedPayloads: UpdatePayloadLookup = {
  payloadsFor: async () => [],
};
