import type { FleetLedger, FleetSnapshot } from '../../shared/ledger/fleet.ts';
import type { FleetPassReport } from '../../shared/update/fleet-pass.ts';
import { lastSeen, machineStatus, machineVersion, redactId } from '../../shared/update/fleet-status.ts';
import type { FleetCounts } from '../../shared/update/fleet-summary.ts';

/** One machine on the status page: its id redacted, since the page is not the admin API. */
export interface FleetRowView {
  machine: string;
  group: string;
  version: string;
  status: string;
  lastSeen: string;
}

export interface FleetStatusView {
  /** The last counting pass; absent until the first ran. */
  counts?: FleetCounts;
  countedAt?: string;
  /** Oldest first: the plot of versions over time. */
  snapshots: FleetSnapshot[];
  rows: FleetRowView[];
  /** More machines than the rows shown. */
  more: boolean;
}

/** Hours of snapshots the plot covers. */
export const fleetPlotHours = 24;

/**
 * The fleet section of the status page: the last pass's counts (counting reads the whole fleet, too much
 * for a page that reloads every few seconds), the snapshots of the last day and the first machines by id.
 */
export async function fleetStatusView(
  ledger: Pick<FleetLedger, 'listFleet' | 'listFleetSnapshots'>,
  lastPass: FleetPassReport | undefined,
  now: Date,
  limit: number,
): Promise<FleetStatusView> {
  const since = new Date(now.getTime() - fleetPlotHours * 3_600_000).toISOString();
  const [snapshots, page] = await Promise.all([ledger.listFleetSnapshots(since), ledger.listFleet(limit)]);
  return {
    ...(lastPass === undefined ? {} : { counts: lastPass.counts, countedAt: lastPass.at }),
    snapshots,
    rows: page.machines.map((machine) => ({
      machine: redactId(machine.machineId),
      group: machine.check?.group ?? '',
      version: machineVersion(machine),
      status: machineStatus(machine),
      lastSeen: lastSeen(machine),
    })),
    more: page.next !== undefined,
  };
}
