import { createBoundedMap } from '../cache-size.ts';
import type { MirrorCurrent } from '../ledger/records.ts';
import type { BootProfile, ReleaseFacts } from './profiles.ts';
import type { BootSelectors } from './selectors.ts';
import type { BootStore, StoredSelection } from './store.ts';

type Members = { id: string; selectors: BootSelectors }[];

/**
 * The boot store behind an in-memory cache, for one machine only: there one process makes every write
 * (the data dir lock), so what it cached stays what the ledger holds, and a boot request costs one
 * ledger write (its token) and no reads. Group listings are dropped whole on every selection change,
 * which is rare; token writes still go to the ledger first, so a restart loses nothing. The caches share
 * `maxBytes` (estimated), least recently used first out; an evicted entry is read again when asked for.
 */
export function withBootCache(store: BootStore, maxBytes = 8 * 1024 * 1024): BootStore {
  // Selections grow with the machines that boot; profiles and group listings are few.
  const profiles = createBoundedMap<BootProfile>(Math.floor(maxBytes / 8));
  const selections = createBoundedMap<StoredSelection>(Math.floor(maxBytes / 2));
  const groups = createBoundedMap<Members>(Math.floor((maxBytes * 3) / 8));
  const selectionsChanged = (id: string) => {
    selections.delete(id);
    groups.clear();
  };
  return {
    async getProfile(name) {
      const cached = profiles.get(name);
      if (cached !== undefined) return cached ?? undefined;
      const profile = await store.getProfile(name);
      profiles.set(name, profile ?? null);
      return profile;
    },
    async putProfile(profile) {
      profiles.delete(profile.name);
      await store.putProfile(profile);
      profiles.set(profile.name, profile);
    },
    async deleteProfile(name) {
      profiles.delete(name);
      const deleted = await store.deleteProfile(name);
      profiles.set(name, null);
      return deleted;
    },
    listProfiles: () => store.listProfiles(),
    async getSelection(id) {
      const cached = selections.get(id);
      if (cached !== undefined) return cached ?? undefined;
      const selection = await store.getSelection(id);
      selections.set(id, selection ?? null);
      return selection;
    },
    async putSelection(selection) {
      selectionsChanged(selection.id);
      try {
        await store.putSelection(selection);
      } finally {
        selectionsChanged(selection.id);
      }
    },
    async deleteSelection(id) {
      selectionsChanged(id);
      try {
        return await store.deleteSelection(id);
      } finally {
        selectionsChanged(id);
      }
    },
    async candidates(keys) {
      const lists = await Promise.all(
        keys.map(async (key) => {
          const cached = groups.get(key);
          if (cached !== undefined && cached !== null) return cached;
          const members = await store.candidates([key]);
          groups.set(key, members);
          return members;
        }),
      );
      return lists.flat();
    },
    async saveState(id, state, rev) {
      const before = selections.get(id);
      const saved = await store.saveState(id, state, rev);
      if (saved && before !== undefined && before !== null && before.rev === rev) {
        selections.set(id, { ...before, ...state, rev: rev + 1 });
      } else if (saved) {
        selections.delete(id);
      } else {
        // Someone else wrote it, or it is gone (its instance was deleted): read both afresh.
        selectionsChanged(id);
      }
      return saved;
    },
  };
}

/**
 * The mirror's current version, re-read at most every `ttlMs`: a boot names a release at most that much
 * older than the newest, which a finalize in the same process moves at most every few minutes.
 */
export function withCurrentCache(releases: ReleaseFacts, ttlMs = 5000, now = () => Date.now()): ReleaseFacts {
  const current = new Map<string, { at: number; value: MirrorCurrent | undefined }>();
  return {
    getArtifact: (ref) => releases.getArtifact(ref),
    async getCurrent(stream) {
      const key = `${stream.source}/${stream.channel}/${stream.board}`;
      const cached = current.get(key);
      if (cached !== undefined && now() - cached.at < ttlMs) return cached.value;
      const value = await releases.getCurrent(stream);
      current.set(key, { at: now(), value });
      return value;
    },
  };
}
