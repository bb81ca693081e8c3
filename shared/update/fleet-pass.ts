import type { CldistConfig } from '../config.ts';
import { sourceOfChannel } from '../config-sources.ts';
import { describeError } from '../errors.ts';
import type { UpdateFailedRateEvent, UpdateRolledOutEvent } from '../events.ts';
import type { FleetLedger } from '../ledger/fleet.ts';
import { versionPattern } from '../messages.ts';
import type { Notifier } from '../notify/types.ts';
import { type FleetCounts, type FleetTally, tallyFleet } from './fleet-summary.ts';

export type FleetNotice = UpdateRolledOutEvent | UpdateFailedRateEvent;

export interface FleetPassDeps {
  ledger: Pick<FleetLedger, 'scanFleet' | 'putFleetSnapshot' | 'claimFleetNotice' | 'recordFleetNotice'>;
  notifier: Pick<Notifier, 'publish'>;
  clock: () => Date;
  logger: {
    info(message: string, attributes: Record<string, unknown>): void;
    warn(message: string, attributes: Record<string, unknown>): void;
  };
}

export interface FleetPassReport {
  at: string;
  counts: FleetCounts;
  /** Notices published by this pass (each goes out once, whichever pass sends it). */
  sent: FleetNotice[];
}

/** How long a claimed notice is this pass's to send before another pass may try. */
const noticeLeaseSeconds = 120;
/** A group name that fits the `channel` attribute subscribers filter on. */
const plainGroup = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** The notices the fleet's state calls for; whether each already went out is the ledger's to say. */
export function fleetNotices(
  tally: FleetTally,
  at: string,
  config: CldistConfig['fleet'],
  sources: CldistConfig['sources'] = [],
): FleetNotice[] {
  const notices: FleetNotice[] = [];
  for (const group of tally.groups.values()) {
    const base = {
      source: sourceOfChannel(sources, group.group) ?? '*',
      channel: group.group,
      board: group.board,
    };
    const [only, ...others] = [...group.versions.keys()];
    const completed = only === undefined ? 0 : (group.progress.get(only)?.completed ?? 0);
    if (only !== undefined && others.length === 0 && completed > 0 && versionPattern.test(only)) {
      notices.push({
        event: 'update.rolled_out',
        ...base,
        version: only,
        at,
        detail: { group: group.group, instances: group.active, updated: completed },
      });
    }
    for (const [version, progress] of group.progress) {
      if (progress.updating < config.failedRate.minInstances || progress.failed === 0) continue;
      const rate = progress.failed / progress.updating;
      if (rate <= config.failedRate.threshold || !versionPattern.test(version)) continue;
      notices.push({
        event: 'update.failed_rate',
        ...base,
        version,
        at,
        detail: {
          group: group.group,
          updating: progress.updating,
          failed: progress.failed,
          rate: Math.round(rate * 1000) / 1000,
          threshold: config.failedRate.threshold,
          errorCodes: progress.errorCodes,
        },
      });
    }
  }
  return notices;
}

/**
 * Counts the fleet, keeps the counts as a snapshot (the plot of versions over time), and sends the
 * notices the counts call for, each once per group, board and version: claimed in the ledger, published,
 * then recorded, so a crash in between repeats a notice after the claim's lease rather than losing it.
 */
export async function runFleetPass(deps: FleetPassDeps, config: CldistConfig): Promise<FleetPassReport> {
  const now = deps.clock();
  const at = now.toISOString();
  const tally = tallyFleet(
    await collect(deps.ledger.scanFleet()),
    now,
    config.fleet.activeWindowMinutes * 60_000,
  );
  await deps.ledger.putFleetSnapshot({
    at,
    active: tally.counts.active,
    byVersion: tally.counts.byVersion,
    byStatus: tally.counts.byStatus,
  });
  const sent: FleetNotice[] = [];
  for (const notice of fleetNotices(tally, at, config.fleet, config.sources)) {
    if (!plainGroup.test(notice.channel)) {
      deps.logger.warn('fleet.notice_skipped', {
        event: notice.event,
        group: notice.channel,
        reason: 'the group name is not a plain lower-case name, so it cannot be the channel attribute',
      });
      continue;
    }
    const subject = `${notice.channel}#${notice.board}#${notice.version}`;
    if (!(await deps.ledger.claimFleetNotice(notice.event, subject, noticeLeaseSeconds))) continue;
    try {
      await deps.notifier.publish(notice);
    } catch (error) {
      // The claim runs out and a later pass sends it.
      deps.logger.warn('fleet.notice_publish_failed', {
        event: notice.event,
        subject,
        cause: describeError(error),
      });
      continue;
    }
    await deps.ledger.recordFleetNotice(notice.event, subject);
    deps.logger.info(notice.event, { group: notice.channel, board: notice.board, version: notice.version });
    sent.push(notice);
  }
  return { at, counts: tally.counts, sent };
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}
