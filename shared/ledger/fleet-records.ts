/**
 * What the fleet part of the ledger stores per machine. The Omaha side fills these from check-ins
 * (`shared/update/fleet-recorder.ts`); the ledger only keeps and lists them.
 */

/** An Omaha answer as stored: the same shape as the endpoint's `OmahaAnswer`. */
export type StoredAnswer =
  | { readonly kind: 'update'; readonly version: string }
  | { readonly kind: 'noupdate' }
  | { readonly kind: 'event-ack' }
  | { readonly kind: 'error'; readonly status: string };

/** A machine's status in the fleet view; `shared/update/fleet-status.ts` says which event gives which. */
export const fleetStatuses = [
  'idle',
  'update-offered',
  'download-started',
  'download-finished',
  'installed',
  'complete',
  'error',
  'deferred',
  'other',
] as const;
export type FleetStatus = (typeof fleetStatuses)[number];

/** The last event a machine reported, as the fleet keeps it. */
export interface FleetEventState {
  /** ISO-8601 time of the request that carried it. */
  readonly at: string;
  readonly type: number;
  readonly result: number;
  readonly errorCode?: number;
  readonly status: FleetStatus;
  /** The version the machine ran when it reported the event. */
  readonly version: string;
}

/** A machine's last update check, as the fleet keeps it. */
export interface FleetCheckState {
  readonly at: string;
  readonly appId: string;
  readonly group: string;
  readonly version: string;
  readonly board: string;
  readonly oem?: string;
  readonly bootId?: string;
  readonly answer: StoredAnswer;
}

/** Everything the fleet knows of one machine. Either part may be absent (never checked, or never reported). */
export interface FleetMachine {
  readonly machineId: string;
  readonly check?: FleetCheckState;
  readonly lastEvent?: FleetEventState;
}
