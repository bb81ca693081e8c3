import {
  type FleetMachine,
  type FleetStatus,
  lastSeen,
  machineStatus,
  machineVersion,
} from './fleet-status.ts';

/** The fleet's counts, as `GET /v1/fleet` and the status page show them: over active machines. */
export interface FleetCounts {
  /** Every machine the fleet view holds (heard of within `fleet.retentionDays`). */
  total: number;
  /** Heard of within `fleet.activeWindowMinutes`; the other counts are over these. */
  active: number;
  inactive: number;
  byGroup: Record<string, number>;
  byVersion: Record<string, number>;
  byStatus: Partial<Record<FleetStatus, number>>;
}

/** One version's progress in one group and board. */
export interface VersionProgress {
  /** Active machines offered this version or reported booting into it. */
  updating: number;
  /** Of those, machines whose status is `error`. */
  failed: number;
  /** update_engine error codes of the failures, with their counts. */
  errorCodes: Record<string, number>;
  /** Active machines that reported booting into this version (event 3, result 2). */
  completed: number;
}

/** One update group on one board: what runs where, and how each offered version is going. */
export interface GroupTally {
  group: string;
  board: string;
  active: number;
  /** Active machines per version they run. */
  versions: Map<string, number>;
  progress: Map<string, VersionProgress>;
}

export interface FleetTally {
  counts: FleetCounts;
  /** Keyed by `{group}#{board}`; machines with no update check yet belong to none. */
  groups: Map<string, GroupTally>;
}

function bump<K extends string>(record: Partial<Record<K, number>>, key: K): void {
  record[key] = (record[key] ?? 0) + 1;
}

function progressOf(tally: GroupTally, version: string): VersionProgress {
  let progress = tally.progress.get(version);
  if (progress === undefined) {
    progress = { updating: 0, failed: 0, errorCodes: {}, completed: 0 };
    tally.progress.set(version, progress);
  }
  return progress;
}

function tallyGroup(tally: GroupTally, machine: FleetMachine, status: FleetStatus, version: string): void {
  tally.active++;
  tally.versions.set(version, (tally.versions.get(version) ?? 0) + 1);
  const { check, lastEvent } = machine;
  const completed = lastEvent?.status === 'complete' ? lastEvent.version : undefined;
  const offered = check?.answer.kind === 'update' ? check.answer.version : undefined;
  const target = completed ?? offered;
  if (target === undefined) return;
  const progress = progressOf(tally, target);
  progress.updating++;
  if (completed !== undefined) progress.completed++;
  if (status === 'error') {
    progress.failed++;
    bump(progress.errorCodes, String(lastEvent?.errorCode ?? 0));
  }
}

/**
 * One pass over the fleet: the counts, and per group and board what runs and how each update goes. Only
 * machines heard of within `activeWindowMs` of `now` count; a machine switched off long ago must not hold
 * a rollout back forever, nor make its error rate.
 */
export function tallyFleet(machines: Iterable<FleetMachine>, now: Date, activeWindowMs: number): FleetTally {
  const since = new Date(now.getTime() - activeWindowMs).toISOString();
  const counts: FleetCounts = { total: 0, active: 0, inactive: 0, byGroup: {}, byVersion: {}, byStatus: {} };
  const groups = new Map<string, GroupTally>();
  for (const machine of machines) {
    counts.total++;
    if (lastSeen(machine) < since) {
      counts.inactive++;
      continue;
    }
    counts.active++;
    const status = machineStatus(machine);
    const version = machineVersion(machine);
    bump(counts.byStatus, status);
    bump(counts.byVersion, version);
    const check = machine.check;
    if (check === undefined) continue;
    bump(counts.byGroup, check.group);
    const key = `${check.group}#${check.board}`;
    let tally = groups.get(key);
    if (tally === undefined) {
      tally = {
        group: check.group,
        board: check.board,
        active: 0,
        versions: new Map(),
        progress: new Map(),
      };
      groups.set(key, tally);
    }
    tallyGroup(tally, machine, status, version);
  }
  return { counts, groups };
}
