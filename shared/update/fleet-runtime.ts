import type { CldistConfig } from '../config.ts';
import type { FleetLedger } from '../ledger/fleet.ts';
import type { FleetRecorder } from './fleet-record.ts';
import { type BufferedFleetRecorder, createFleetRecorder, type StartTimer } from './fleet-recorder.ts';

export { fleetLedgerFor } from '../ledger/fleet.ts';

const MiB = 1024 * 1024;

/** What the API needs of the fleet: the recorder the Omaha endpoint writes to, and the ledger to read. */
export interface FleetApiDeps {
  recorder: FleetRecorder;
  ledger: Pick<FleetLedger, 'listFleet' | 'scanFleet'>;
  clock: () => Date;
}

export interface FleetRecording {
  recorder: BufferedFleetRecorder;
  /** What the API app takes: the recorder for the Omaha endpoint, the ledger for `GET /v1/fleet`. */
  api: FleetApiDeps;
}

/**
 * The recorder with its bounds from the config, over `ledger`. The host flushes it: `close()` at an
 * orderly shutdown, and on Lambda `flush()` at the end of every invocation, since a frozen sandbox runs
 * no timers.
 */
export function createFleetRecording(
  ledger: FleetLedger,
  config: CldistConfig,
  options: {
    clock: () => Date;
    onError: (error: unknown, dropped: number) => void;
    startTimer?: StartTimer;
  },
): FleetRecording {
  const recorder = createFleetRecorder({
    ledger,
    flushIntervalMs: config.fleet.flushIntervalSeconds * 1000,
    flushAtMachines: config.fleet.flushAtMachines,
    maxMachines: config.fleet.maxPendingMachines,
    maxBytes: config.fleet.maxPendingMiB * MiB,
    unchangedRefreshMs: config.fleet.unchangedRefreshMinutes * 60_000,
    onError: options.onError,
    ...(options.startTimer === undefined ? {} : { startTimer: options.startTimer }),
  });
  return { recorder, api: { recorder, ledger, clock: options.clock } };
}
