import type { CldistConfig } from '../../shared/config.ts';
import { describeError } from '../../shared/errors.ts';
import { sweepConfigBodies } from '../../shared/instances/body-sweep.ts';
import type { RefusedFetchCounter } from '../../shared/instances/service.ts';
import type { FetchOutcome, InstanceRepository } from '../../shared/instances/types.ts';
import type { ObjectStore } from '../../shared/store/types.ts';
import type { Logger } from './log.ts';

export interface InstanceUpkeepOptions {
  instances: InstanceRepository;
  bodies: ObjectStore;
  config: CldistConfig;
  logger: Logger;
  clock: () => Date;
  /** Between sweeps of unreferenced bodies and expired audit; default an hour. */
  sweepEveryMs?: number;
  /** Between `api.fetches_refused` lines (only when something was refused); default a minute. */
  reportEveryMs?: number;
}

export interface InstanceUpkeep {
  countRefused: RefusedFetchCounter;
  /** Totals since start, by outcome, for the status page and tests. */
  refusedTotals(): Record<string, number>;
  /** One sweep now (also what the timer runs). */
  sweep(): Promise<void>;
  /** Stop the timers, waiting for a running sweep, and report what is still uncounted. */
  stop(): Promise<void>;
}

/**
 * dynalite keeps no TTL. Audit is grouped by day, so a sweep queries one day at a time: the first sweep
 * of a process looks back a year past the cutoff (a data dir left stopped for longer keeps what is older),
 * later ones a week.
 */
const firstLookBackDays = 366;
const laterLookBackDays = 7;

/**
 * The single-machine stand-ins for what AWS does on a schedule or by itself: collecting config bodies no
 * record points at (the daily sweep Lambda run there), removing audit past `api.auditRetentionDays`
 * (DynamoDB's TTL there), and reporting refused fetches as a counter (a Powertools metric there).
 */
export function startInstanceUpkeep(options: InstanceUpkeepOptions): InstanceUpkeep {
  const { logger, clock } = options;
  const totals = new Map<FetchOutcome, number>();
  const sinceReport = new Map<FetchOutcome, number>();
  let lookBackDays = firstLookBackDays;
  let running: Promise<void> | undefined;
  let stopped = false;

  const report = () => {
    if (sinceReport.size === 0) return;
    const counts = Object.fromEntries(sinceReport);
    sinceReport.clear();
    logger.info('api.fetches_refused', { counts });
  };

  const sweepOnce = async () => {
    try {
      const bodies = await sweepConfigBodies(options);
      if (bodies.removed > 0) logger.info('config_bodies.swept', { ...bodies });
      const cutoff = new Date(clock().getTime() - options.config.api.auditRetentionDays * 86_400_000);
      const removed = await options.instances.deleteAuditBefore(cutoff, lookBackDays);
      lookBackDays = laterLookBackDays;
      if (removed > 0) logger.info('audit.expired_removed', { items: removed, before: cutoff.toISOString() });
    } catch (error) {
      logger.warn('instance_upkeep.failed', { cause: describeError(error) });
    }
  };
  const sweep = () => {
    running ??= sweepOnce().finally(() => {
      running = undefined;
    });
    return running;
  };

  const reportTimer = setInterval(report, options.reportEveryMs ?? 60_000);
  reportTimer.unref();
  let sweepTimer: NodeJS.Timeout | undefined;
  const scheduleSweep = (delayMs: number) => {
    sweepTimer = setTimeout(() => {
      void sweep().finally(() => {
        if (!stopped) scheduleSweep(options.sweepEveryMs ?? 3_600_000);
      });
    }, delayMs);
    sweepTimer.unref();
  };
  scheduleSweep(Math.min(60_000, options.sweepEveryMs ?? 60_000));

  return {
    countRefused(outcome) {
      totals.set(outcome, (totals.get(outcome) ?? 0) + 1);
      sinceReport.set(outcome, (sinceReport.get(outcome) ?? 0) + 1);
    },
    refusedTotals: () => Object.fromEntries(totals),
    sweep,
    async stop() {
      stopped = true;
      clearInterval(reportTimer);
      if (sweepTimer !== undefined) clearTimeout(sweepTimer);
      await running;
      report();
    },
  };
}
