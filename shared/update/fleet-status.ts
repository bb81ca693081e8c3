import type { FleetMachine, FleetStatus } from '../ledger/fleet-records.ts';
import type { OmahaEventReport } from './fleet-record.ts';

export type {
  FleetCheckState,
  FleetEventState,
  FleetMachine,
  FleetStatus,
} from '../ledger/fleet-records.ts';
export { fleetStatuses } from '../ledger/fleet-records.ts';

/**
 * What the fleet view says a machine is doing, from the last Omaha event it reported and the last answer
 * it was given. The event codes are update_engine's (`OmahaEvent::Type` and `OmahaEvent::Result` in its
 * `omaha_request_action.h`, after Omaha's own server protocol):
 *
 * | type | result | meaning | status |
 * |---|---|---|---|
 * | 13 `UpdateDownloadStarted` | 1 | payload download began | `download-started` |
 * | 14 `UpdateDownloadFinished` | 1 | payload downloaded and verified | `download-finished` |
 * | 1 `DownloadComplete` | 1 | (older clients) the same | `download-finished` |
 * | 2 `InstallComplete` | 1 | (older clients) written to the other partition | `installed` |
 * | 3 `UpdateComplete` | 1 | written and marked bootable, waiting for a reboot | `installed` |
 * | 3 `UpdateComplete` | 2 `SuccessReboot` | booted into the new version | `complete` |
 * | any | 0 `Error` | the step failed (`errorcode` says why) | `error` |
 * | any | 9 `UpdateDeferred` | policy held the update back | `deferred` |
 *
 * This gives the status one reported event puts a machine in.
 */
export function eventStatus(event: OmahaEventReport): FleetStatus {
  if (event.result === 0) return 'error';
  if (event.result === 9) return 'deferred';
  if (event.type === 3) return event.result === 2 ? 'complete' : 'installed';
  if (event.type === 13) return 'download-started';
  if (event.type === 14 || event.type === 1) return 'download-finished';
  if (event.type === 2) return 'installed';
  return 'other';
}

/**
 * The machine's status: an update offered after its last event (or with none) is `update-offered`; an
 * event reported is its status until the next offer; a machine never offered anything is `idle`.
 */
export function machineStatus(machine: FleetMachine): FleetStatus {
  const { check, lastEvent } = machine;
  const offeredAt = check?.answer.kind === 'update' ? check.at : undefined;
  if (offeredAt !== undefined && (lastEvent === undefined || lastEvent.at < offeredAt)) {
    return 'update-offered';
  }
  return lastEvent?.status ?? 'idle';
}

/** The machine's newest sign of life: its last check or its last event, whichever is later. */
export function lastSeen(machine: FleetMachine): string {
  const check = machine.check?.at ?? '';
  const event = machine.lastEvent?.at ?? '';
  if (event > check) return event;
  return check;
}

/** What the machine runs now: the newer of its check's and its event's version. */
export function machineVersion(machine: FleetMachine): string {
  const { check, lastEvent } = machine;
  if (check === undefined) return lastEvent?.version ?? '';
  if (lastEvent === undefined) return check.version;
  return lastEvent.at > check.at ? lastEvent.version : check.version;
}

/** Machine and boot ids accepted by the recorder: what update_engine sends (hex, UUIDs), nothing odd. */
export const fleetIdPattern = /^[A-Za-z0-9._:{}-]{1,128}$/;

/**
 * The short form of a machine or boot id shown to anyone but an admin: its first six characters. A
 * machine id is a stable secret of the host (systemd's `machine-id(5)` asks for it to be treated as
 * confidential), so the status page and every non-admin view name a machine by this alone.
 */
export function redactId(id: string): string {
  return id.length <= 6 ? '…' : `${id.slice(0, 6)}…`;
}
