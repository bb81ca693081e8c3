import type { CldistConfig } from '../config.ts';
import { findChannel, pollTargets } from '../config-sources.ts';
import { describeError } from '../errors.ts';
import type { ReleaseRef } from '../ledger/ledger.ts';
import type { ReleaseStream } from './pinned.ts';
import { finishPendingPrunes, type PruneDeps, pruneReleases } from './prune.ts';

/**
 * The `keepReleases` setting of a stream, or undefined where retention is off. The only place that knows
 * where the setting lives in the config.
 */
export function keepReleasesFor(
  config: Pick<CldistConfig, 'sources'>,
  stream: ReleaseStream,
): number | undefined {
  const found = findChannel(config.sources, stream.source, stream.channel);
  return found === undefined ? undefined : (found.channel.keepReleases ?? found.source.keepReleases);
}

/**
 * Retention of a release's stream, right after the release was announced: the newer release is out, so
 * older ones may go. Never throws: the announcement stands whatever happens here, and the poller's sweep
 * finishes a prune left half-done. Returns the versions pruned.
 */
export async function retainAfterAnnounce(
  release: ReleaseRef,
  mirrorDeps: Omit<PruneDeps, 'mirrorSources'>,
  config: Pick<CldistConfig, 'sources'>,
): Promise<string[]> {
  const deps: PruneDeps = { ...mirrorDeps, mirrorSources: config.sources };
  const stream = { source: release.source, channel: release.channel, board: release.board };
  const keep = keepReleasesFor(config, stream);
  if (keep === undefined) return [];
  try {
    return (await pruneReleases({ stream, keep }, deps)).pruned;
  } catch (error) {
    deps.logger.error('retention.prune_failed', { ...stream, keep, error: describeError(error) });
    return [];
  }
}

export interface RetentionReport {
  /** Releases pruned by this sweep. */
  pruned: number;
  /** Parts of the sweep that failed: the finish of half-done prunes, and each stream over its setting. */
  failures: number;
}

/**
 * The poller's retention sweep: finishes every prune an earlier run left half-done (whatever the setting
 * says now: a marked release is already hidden), then applies `keepReleases` to every configured stream,
 * so turning retention on takes effect at the next poll. Each stream fails on its own and is logged; the
 * count of failures is the poller's `PruneFailures` metric, which alarms when prunes keep failing.
 */
export async function runRetention(
  mirrorDeps: Omit<PruneDeps, 'mirrorSources'>,
  config: Pick<CldistConfig, 'sources'>,
): Promise<RetentionReport> {
  const deps: PruneDeps = { ...mirrorDeps, mirrorSources: config.sources };
  let pruned = 0;
  let failures = 0;
  try {
    pruned += (await finishPendingPrunes(undefined, deps)).length;
  } catch (error) {
    failures++;
    deps.logger.error('retention.prune_failed', { error: describeError(error) });
  }
  const streams = pollTargets(config.sources).map(({ source, channel, board }) => ({
    source: source.name,
    channel: channel.name,
    board,
  }));
  for (const stream of streams) {
    const keep = keepReleasesFor(config, stream);
    if (keep === undefined) continue;
    try {
      pruned += (await pruneReleases({ stream, keep }, deps)).pruned.length;
    } catch (error) {
      failures++;
      deps.logger.error('retention.prune_failed', { ...stream, keep, error: describeError(error) });
    }
  }
  return { pruned, failures };
}
