/**
 * The contract between the Omaha endpoint, which sees every check-in, and the fleet view, which
 * records them. Recording is a port so that the endpoint's answer never waits on the fleet store:
 * the recorder may batch and coalesce writes as long as the latest state per machine wins.
 */

/** An Omaha `<event>` as update_engine reports it: numeric type, result and optional error code. */
export interface OmahaEventReport {
  readonly type: number;
  readonly result: number;
  readonly errorCode?: number;
}

/** What the endpoint answered to one request. */
export type OmahaAnswer =
  | { readonly kind: 'update'; readonly version: string }
  | { readonly kind: 'noupdate' }
  | { readonly kind: 'event-ack' }
  | { readonly kind: 'error'; readonly status: string };

/** One check-in of one machine, as parsed from its Omaha request. */
export interface FleetCheckIn {
  readonly machineId: string;
  readonly bootId?: string;
  readonly appId: string;
  /** The request's `track`: the update group. */
  readonly group: string;
  readonly version: string;
  readonly board: string;
  readonly oem?: string;
  /** ISO-8601 time the request arrived. */
  readonly at: string;
  readonly events: readonly OmahaEventReport[];
  readonly answer: OmahaAnswer;
}

/** Write side used by the Omaha endpoint; must not throw and must not block the answer. */
export interface FleetRecorder {
  record(checkIn: FleetCheckIn): void;
}
