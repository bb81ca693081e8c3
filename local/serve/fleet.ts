import { ConfigError, describeError } from '../../shared/errors.ts';
import type { FleetLedger } from '../../shared/ledger/fleet.ts';
import type { MirrorRuntime } from '../../shared/mirror/runtime.ts';
import { type FleetPassReport, runFleetPass } from '../../shared/update/fleet-pass.ts';
import { createFleetRecording, type FleetRecording } from '../../shared/update/fleet-runtime.ts';
import type { ServeContext } from './types.ts';

export interface LocalFleet extends FleetRecording {
  ledger: FleetLedger;
  /** Counts the fleet, keeps the snapshot and sends the notices now; a pass already running is joined. */
  passNow(): Promise<FleetPassReport>;
  /** The last finished pass, for the status page. */
  lastPass(): FleetPassReport | undefined;
}

/**
 * The fleet on one machine: the recorder over the shared runtime's fleet ledger (closed, so flushed, at
 * shutdown) and a timer in place of the scheduled pass that counts the fleet and sends its notices.
 */
export function openFleet(context: ServeContext, runtime: MirrorRuntime): LocalFleet {
  const { config, logger, lifecycle } = context;
  const ledger = runtime.fleet;
  if (ledger === undefined) throw new ConfigError('the mirror runtime has no fleet ledger');
  const recording = createFleetRecording(ledger, config, {
    clock: context.clock,
    // A retried flush is routine while the ledger restarts (a full disk); a drop is what to act on.
    onError: (error, dropped) =>
      dropped > 0
        ? logger.warn('fleet.states_dropped', { dropped, cause: describeError(error) })
        : logger.debug('fleet.flush_retry', { cause: describeError(error) }),
  });
  const { deps } = runtime;
  let running: Promise<FleetPassReport> | undefined;
  let last: FleetPassReport | undefined;
  const passNow = () => {
    running ??= runFleetPass({ ledger, notifier: deps.notifier, clock: deps.clock, logger }, config)
      .then((report) => {
        last = report;
        return report;
      })
      .finally(() => {
        running = undefined;
      });
    return running;
  };
  const timer = setInterval(() => {
    passNow().catch((error: unknown) => logger.warn('fleet.pass_failed', { cause: describeError(error) }));
  }, config.fleet.snapshotEveryMinutes * 60_000);
  timer.unref();
  lifecycle.defer(async () => {
    clearInterval(timer);
    await running?.catch(() => undefined);
    await recording.recorder.close().catch((error: unknown) => {
      logger.warn('fleet.states_dropped', {
        dropped: recording.recorder.stats().pending,
        cause: describeError(error),
      });
    });
  });
  return { ...recording, ledger, passNow, lastPass: () => last };
}
