import type { BootLoader } from './scripts.ts';
import type { BootRequestFacts } from './selectors.ts';

/** One boot request as the status page lists it. */
export interface RecentBoot {
  at: string;
  loader: BootLoader;
  mac?: string;
  uuid?: string;
  serial?: string;
  hostname?: string;
  /** `boot`, `local`, or why it waits (`unknown`, `no-profile`, `no-release`, `unavailable`, …). */
  outcome: string;
  instance?: string;
  profile?: string;
}

export interface RecentBoots {
  record(entry: RecentBoot): void;
  /** Newest first. */
  list(): RecentBoot[];
}

/** Machines that asked lately, matched or not; bounded, so unknown machines cannot grow it. */
export function createRecentBoots(limit = 50): RecentBoots {
  const entries: RecentBoot[] = [];
  return {
    record(entry) {
      entries.push(entry);
      if (entries.length > limit) entries.splice(0, entries.length - limit);
    },
    list: () => [...entries].reverse(),
  };
}

export function recentEntry(
  at: Date,
  loader: BootLoader,
  facts: BootRequestFacts,
  outcome: { outcome: string; instance?: string; profile?: string },
): RecentBoot {
  const { labels: _labels, ...hardware } = facts;
  return { at: at.toISOString(), loader, ...hardware, ...outcome };
}
