import type { CldistConfig } from '../../shared/config.ts';
import { findChannel } from '../../shared/config-sources.ts';
import { describeError } from '../../shared/errors.ts';
import type { StreamRef } from '../../shared/ledger/ledger.ts';
import { streamKey } from '../../shared/ledger/table.ts';
import { type PollReport, resendOpenWork, runPoll } from '../../shared/mirror/poller.ts';
import type { MirrorRuntime } from '../../shared/mirror/runtime.ts';
import { currentVersionUrl } from '../../shared/release/layout.ts';
import type { DiskGuard } from '../runtime/disk-guard.ts';
import type { Logger } from '../runtime/log.ts';
import type { PollProblem } from '../status/model.ts';

export interface Scheduler {
  /** Poll every channel now; a poll already running is joined, not doubled. */
  pollNow(): Promise<PollReport>;
  lastPoll(): PollReport | undefined;
  /** The last poll's failure of one source's channel and board, for the status page. */
  pollProblem(stream: StreamRef): PollProblem | undefined;
  /** Polls every `everyMs` from now on, skipping while the disk guard pauses mirroring. */
  start(everyMs: number): void;
  /** No further polls; waits for a running one. */
  stop(): Promise<void>;
}

/** The status page's memory of which origins did not answer, kept from the poll's report values. */
function problemsOf(report: PollReport, config: CldistConfig, at: string, into: Map<string, PollProblem>) {
  for (const entry of report.results) {
    const id = streamKey(entry);
    if (entry.outcome !== 'error') {
      into.delete(id);
      continue;
    }
    const found = findChannel(config.sources, entry.source, entry.channel);
    const url = found === undefined ? '' : currentVersionUrl(found.source, found.channel, entry.board);
    into.set(id, { url, cause: entry.error ?? 'unknown', at });
  }
}

/**
 * The schedule of one machine: a timer in place of the EventBridge rule, over the same `runPoll`. The
 * core logs what it decides; the host keeps only the report's values (the status page's poll problems).
 */
export function createScheduler(runtime: MirrorRuntime, diskGuard: DiskGuard, logger: Logger): Scheduler {
  const { deps, config } = runtime;
  const problems = new Map<string, PollProblem>();
  let polling: Promise<PollReport> | undefined;
  let last: PollReport | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const pollNow = (): Promise<PollReport> => {
    polling ??= runPoll(deps, config)
      .then((report) => {
        problemsOf(report, config, deps.clock().toISOString(), problems);
        last = report;
        return report;
      })
      .finally(() => {
        polling = undefined;
      });
    return polling;
  };

  const schedule = (everyMs: number) => {
    timer = setTimeout(() => {
      if (diskGuard.paused) {
        logger.debug('poll.skipped_low_disk', { ...diskGuard.state() });
        if (!stopped) schedule(everyMs);
        return;
      }
      pollNow()
        .catch((error: unknown) => logger.error('poll.failed', { cause: describeError(error) }))
        .finally(() => {
          if (!stopped) schedule(everyMs);
        });
    }, everyMs);
  };

  return {
    pollNow,
    lastPoll: () => last,
    pollProblem: (stream) => problems.get(streamKey(stream)),
    start: schedule,
    async stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      await polling?.catch(() => undefined);
    },
  };
}

/**
 * The stand-in queue lives in memory, so a restart lost every job: resend the jobs of every open artifact
 * (and finalize releases stranded done), as stalled since now. The first poll, right after, claims new
 * releases, so nothing is sent twice.
 */
export function resumeOpenWork(runtime: MirrorRuntime): Promise<unknown> {
  return resendOpenWork(runtime.deps, runtime.config, runtime.deps.clock());
}
