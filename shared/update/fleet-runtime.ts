import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { FleetApiDeps } from '../api/fleet-routes.ts';
import type { CldistConfig } from '../config.ts';
import { createDynamoFleetLedger, type FleetLedger } from '../ledger/fleet.ts';
import { type BufferedFleetRecorder, createFleetRecorder, type StartTimer } from './fleet-recorder.ts';

const MiB = 1024 * 1024;

/** The fleet ledger as every host builds it, its retention from the config. */
export function fleetLedgerFor(
  doc: DynamoDBDocumentClient,
  tableName: string,
  config: CldistConfig,
  clock: () => Date = () => new Date(),
): FleetLedger {
  return createDynamoFleetLedger(doc, tableName, {
    retentionDays: config.fleet.retentionDays,
    snapshotRetentionDays: config.fleet.snapshotRetentionDays,
    clock,
  });
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
    onError: options.onError,
    ...(options.startTimer === undefined ? {} : { startTimer: options.startTimer }),
  });
  return { recorder, api: { recorder, ledger, clock: options.clock } };
}
