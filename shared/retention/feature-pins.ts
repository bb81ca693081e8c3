import type { BootProfile } from '../boot/profiles.ts';
import type { CldistConfig } from '../config.ts';
import { sourceOfChannel } from '../config-sources.ts';
import type { UpdateGroup } from '../update/groups.ts';
import type { PinnedReleases } from './pinned.ts';

/** Where the pins are read: the boot profiles and the update groups, both on the ledger table. */
export interface FeaturePinSources {
  profiles: { listProfiles(): Promise<BootProfile[]> };
  groups: { listGroups(): Promise<UpdateGroup[]> };
  /** The configured sources: a profile or group names a bare channel, which is the first source's that has it. */
  sources: CldistConfig['sources'];
}

/**
 * A release is pinned when a bare-metal profile boots exactly that channel, board and version, or an
 * update group holds its channel at that version (update payloads are per board, so a group's pin keeps
 * the version on every board of the channel). Profiles and groups that follow `current` pin nothing:
 * retention never deletes `current` anyway. Read fresh on every question, because a prune is rare and a
 * stale answer could delete what a machine is about to boot.
 */
export function featurePins(sources: FeaturePinSources): PinnedReleases {
  return {
    async isPinned(stream, version) {
      const [profiles, groups] = await Promise.all([
        sources.profiles.listProfiles(),
        sources.groups.listGroups(),
      ]);
      const ours = (channel: string) =>
        channel === stream.channel && sourceOfChannel(sources.sources, channel) === stream.source;
      const byProfile = profiles.some(
        (profile) =>
          profile.version !== 'current' &&
          ours(profile.channel) &&
          profile.board === stream.board &&
          profile.version === version,
      );
      return byProfile || groups.some((group) => ours(group.channel) && group.version === version);
    },
  };
}
