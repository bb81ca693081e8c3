import type { StreamRef } from '../ledger/ledger.ts';
/** One stream of releases: a source's channel and board. Retention counts and prunes releases per stream. */
export type ReleaseStream = StreamRef;

/**
 * Releases something still depends on, which retention must never delete whatever their age: a bare-metal
 * profile that boots a fixed version, an update group held at one. Each such feature implements this port
 * and the host joins them (`anyPinned`); until one exists nothing is pinned. Asked just before a release is
 * marked for pruning, so a pin set after that does not stop a prune already under way.
 */
export interface PinnedReleases {
  isPinned(stream: ReleaseStream, version: string): Promise<boolean>;
}

export const noPinnedReleases: PinnedReleases = {
  isPinned: () => Promise.resolve(false),
};

/** Pinned if any of `ports` pins it. */
export function anyPinned(...ports: PinnedReleases[]): PinnedReleases {
  return {
    async isPinned(stream, version) {
      for (const port of ports) {
        if (await port.isPinned(stream, version)) return true;
      }
      return false;
    },
  };
}
