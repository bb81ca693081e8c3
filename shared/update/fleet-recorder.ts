import type { FleetLedger, FleetWrite } from '../ledger/fleet.ts';
import type { FleetCheckIn, FleetRecorder } from './fleet-record.ts';
import { eventStatus, type FleetCheckState, type FleetEventState, fleetIdPattern } from './fleet-status.ts';

/** Starts a one-shot timer and gives back its cancel; injected so tests drive the interval themselves. */
export type StartTimer = (run: () => void, ms: number) => () => void;

const unrefTimer: StartTimer = (run, ms) => {
  const timer = setTimeout(run, ms);
  timer.unref();
  return () => clearTimeout(timer);
};

export interface FleetRecorderOptions {
  ledger: Pick<FleetLedger, 'writeFleet'>;
  /** How long a recorded state may wait before it is written. */
  flushIntervalMs: number;
  /** A flush starts at once when this many machines are waiting. */
  flushAtMachines: number;
  /** At most this many machines wait in memory; beyond it the oldest waiting state is dropped. */
  maxMachines: number;
  /** At most about this many bytes of waiting state; beyond it the oldest is dropped. */
  maxBytes: number;
  /**
   * A check-in that changes nothing (same group, version, board, OEM, boot and answer as the state last
   * written, and no event) within this long of it is not written again: its only news is the time.
   * 0 writes every check-in.
   */
  unchangedRefreshMs: number;
  /** Told about failed flushes (retried) and dropped states (lost), at most once per flush. */
  onError: (error: unknown, dropped: number) => void;
  startTimer?: StartTimer;
}

export interface FleetRecorderStats {
  /** Machines whose state waits to be written. */
  pending: number;
  /** Estimated bytes of that state. */
  pendingBytes: number;
  /** Machine states written since start. */
  written: number;
  /** States dropped since start: over the memory bound, or an id that is not an id. */
  dropped: number;
  /** Check-ins recorded since start. */
  recorded: number;
  /** Check-ins not written because they changed nothing within `unchangedRefreshMs`. */
  unchanged: number;
}

/** The recorder the Omaha endpoint writes to, plus what its host needs: flush, close and its figures. */
export interface BufferedFleetRecorder extends FleetRecorder {
  /** Writes everything recorded so far; rejects if the ledger refused (the states wait for the next try). */
  flush(): Promise<void>;
  /** Stops the timer and writes what is left. */
  close(): Promise<void>;
  stats(): FleetRecorderStats;
}

interface Pending {
  check?: FleetCheckState;
  event?: FleetEventState;
  bytes: number;
}

/** A cheap upper estimate of a state's size in memory (two bytes a character, plus object overhead). */
function sizeOf(pending: Omit<Pending, 'bytes'>): number {
  let chars = 0;
  const { check, event } = pending;
  if (check !== undefined) {
    chars += check.at.length + check.appId.length + check.group.length + check.version.length;
    chars += check.board.length + (check.oem?.length ?? 0) + (check.bootId?.length ?? 0) + 32;
  }
  if (event !== undefined) chars += event.at.length + event.version.length + 16;
  return 2 * chars + 320;
}

/** Longest group, version, board, OEM or app id kept; Omaha's own values are a few dozen characters. */
export const maxFleetFieldLength = 128;

/**
 * Whether a check-in can be stored: an id that is an id, and every other field short. One oversized
 * value would make DynamoDB refuse the whole batch it is in, again at every retry.
 */
function storable(checkIn: FleetCheckIn): boolean {
  if (!fleetIdPattern.test(checkIn.machineId)) return false;
  for (const value of [
    checkIn.group,
    checkIn.version,
    checkIn.board,
    checkIn.appId,
    checkIn.oem ?? '',
    checkIn.at,
  ]) {
    if (typeof value !== 'string' || value.length > maxFleetFieldLength) return false;
  }
  // The time decides the item's expiry: it must be a time.
  if (!Number.isFinite(Date.parse(checkIn.at))) return false;
  const answer = checkIn.answer;
  const detail = answer.kind === 'update' ? answer.version : answer.kind === 'error' ? answer.status : '';
  return typeof detail === 'string' && detail.length <= maxFleetFieldLength && Array.isArray(checkIn.events);
}

/** What a check says apart from its time: equal fingerprints, nothing new to write. */
function fingerprintOf(check: FleetCheckState): string {
  const { answer } = check;
  const detail = answer.kind === 'update' ? answer.version : answer.kind === 'error' ? answer.status : '';
  return [
    check.appId,
    check.group,
    check.version,
    check.board,
    check.oem,
    check.bootId,
    answer.kind,
    detail,
  ].join('\n');
}

function checkOf(checkIn: FleetCheckIn): FleetCheckState | undefined {
  // An event-only request is no update check: it must not replace the last answer (the offer it reports on).
  if (checkIn.answer.kind === 'event-ack') return undefined;
  return {
    at: checkIn.at,
    appId: checkIn.appId,
    group: checkIn.group,
    version: checkIn.version,
    board: checkIn.board,
    ...(checkIn.oem === undefined ? {} : { oem: checkIn.oem }),
    ...(checkIn.bootId === undefined || !fleetIdPattern.test(checkIn.bootId)
      ? {}
      : { bootId: checkIn.bootId }),
    answer: checkIn.answer,
  };
}

function eventOf(checkIn: FleetCheckIn): FleetEventState | undefined {
  // The last well-formed event: numbers that are not whole would be refused by the store.
  const last = checkIn.events.findLast(
    (event) => Number.isSafeInteger(event.type) && Number.isSafeInteger(event.result),
  );
  if (last === undefined) return undefined;
  return {
    at: checkIn.at,
    type: last.type,
    result: last.result,
    ...(last.errorCode === undefined || !Number.isSafeInteger(last.errorCode)
      ? {}
      : { errorCode: last.errorCode }),
    status: eventStatus(last),
    version: checkIn.version,
  };
}

/**
 * Write-behind recording of check-ins. `record` only updates a map in memory (one entry per machine: its
 * newest check and newest event, so a machine that checks in ten times between flushes costs one write),
 * and a flush writes the map with BatchWriteItem every `flushIntervalMs`, as soon as `flushAtMachines`
 * are waiting, and on `flush()`/`close()`. Flushes run one at a time, in order, so a newer state is never
 * overwritten by an older one; a failed flush puts its states back under any newer ones and is retried on
 * the next interval.
 *
 * A check-in that changes nothing since the state last written (no event, the same version, group,
 * board, OEM, boot and answer) within `unchangedRefreshMs` is not written at all: a machine that checks
 * in more often than that (update_engine retrying, a benchmark) costs one write per period, and its
 * last-check time in the ledger lags by at most that much.
 *
 * What a crash can lose: the states recorded since the last successful flush, that is at most
 * `flushIntervalMs` plus one flush's duration of check-ins (while the ledger is reachable). A state once
 * written stays until a newer state of the same machine replaces it. Memory is bounded by `maxMachines`
 * and `maxBytes`: beyond them (a ledger down for long) the oldest waiting states are dropped and counted.
 */
export function createFleetRecorder(options: FleetRecorderOptions): BufferedFleetRecorder {
  const recorder = new FleetRecorderCore(options);
  return {
    record: (checkIn) => recorder.safeRecord(checkIn),
    flush: () => recorder.flush(),
    close: () => recorder.close(),
    stats: () => recorder.stats(),
  };
}

/** The state behind `createFleetRecorder`: the waiting map and its bounds, the timer and the flush chain. */
class FleetRecorderCore {
  private pending = new Map<string, Pending>();
  private pendingBytes = 0;
  private cancelTimer: (() => void) | undefined;
  private running: Promise<void> = Promise.resolve();
  private flushQueued = false;
  private closed = false;
  private readonly counts = { written: 0, dropped: 0, recorded: 0, unchanged: 0 };
  /** What was last written per machine, oldest first, at most `maxMachines`: to skip unchanged check-ins. */
  private readonly lastWritten = new Map<string, { fingerprint: string; at: number }>();
  /** Dropped since last reported, so a long outage reports once per flush, not once per check-in. */
  private unreported = 0;
  private readonly startTimer: StartTimer;

  constructor(private readonly options: FleetRecorderOptions) {
    this.startTimer = options.startTimer ?? unrefTimer;
  }

  stats(): FleetRecorderStats {
    return { pending: this.pending.size, pendingBytes: this.pendingBytes, ...this.counts };
  }

  safeRecord(checkIn: FleetCheckIn): void {
    try {
      this.record(checkIn);
    } catch (error) {
      // The endpoint's answer never depends on the fleet: a fault here is reported, never thrown.
      this.report(error);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }

  flush(): Promise<void> {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    this.running = this.running.catch(() => undefined).then(() => this.writePending());
    const done = this.running;
    done.then(
      () => {
        if (this.unreported > 0) this.report(new Error('fleet recorder memory bound reached'));
        if (this.pending.size > 0) this.schedule();
      },
      () => this.schedule(),
    );
    return done;
  }

  private record(checkIn: FleetCheckIn): void {
    this.counts.recorded++;
    if (!storable(checkIn)) {
      this.counts.dropped++;
      return;
    }
    const check = checkOf(checkIn);
    const event = eventOf(checkIn);
    if (check === undefined && event === undefined) return;
    if (event === undefined && check !== undefined && this.unchanged(checkIn.machineId, check)) {
      this.counts.unchanged++;
      return;
    }
    this.put(checkIn.machineId, {
      ...(check === undefined ? {} : { check }),
      ...(event === undefined ? {} : { event }),
    });
    this.enforceBound();
    if (this.pending.size >= this.options.flushAtMachines && !this.flushQueued) {
      this.flushQueued = true;
      this.flush().catch((error: unknown) => this.report(error));
    } else {
      this.schedule();
    }
  }

  private remember(writes: readonly FleetWrite[]): void {
    if (this.options.unchangedRefreshMs <= 0) return;
    for (const write of writes) {
      if (write.check === undefined) continue;
      this.lastWritten.delete(write.machineId);
      this.lastWritten.set(write.machineId, {
        fingerprint: fingerprintOf(write.check),
        at: Date.parse(write.check.at),
      });
    }
    for (const machineId of this.lastWritten.keys()) {
      if (this.lastWritten.size <= this.options.maxMachines) break;
      this.lastWritten.delete(machineId);
    }
  }

  private unchanged(machineId: string, check: FleetCheckState): boolean {
    if (this.pending.has(machineId)) return false;
    const last = this.lastWritten.get(machineId);
    return (
      last !== undefined &&
      Date.parse(check.at) - last.at < this.options.unchangedRefreshMs &&
      last.fingerprint === fingerprintOf(check)
    );
  }

  private put(machineId: string, entry: Omit<Pending, 'bytes'>): void {
    const old = this.pending.get(machineId);
    const merged = {
      check: entry.check ?? old?.check,
      event: entry.event ?? old?.event,
    };
    const bytes = sizeOf(merged);
    if (old !== undefined) {
      this.pendingBytes -= old.bytes;
      // Delete first so the machine moves to the end: the map's order is oldest state first.
      this.pending.delete(machineId);
    }
    this.pending.set(machineId, { ...merged, bytes });
    this.pendingBytes += bytes;
  }

  private enforceBound(): void {
    for (const [machineId, entry] of this.pending) {
      if (this.pending.size <= this.options.maxMachines && this.pendingBytes <= this.options.maxBytes) return;
      this.pending.delete(machineId);
      this.pendingBytes -= entry.bytes;
      this.counts.dropped++;
      this.unreported++;
    }
  }

  private async writePending(): Promise<void> {
    this.flushQueued = false;
    if (this.pending.size === 0) return;
    const taken = this.pending;
    this.pending = new Map();
    this.pendingBytes = 0;
    const writes: FleetWrite[] = [];
    for (const [machineId, entry] of taken) {
      writes.push({
        machineId,
        ...(entry.check === undefined ? {} : { check: entry.check }),
        ...(entry.event === undefined ? {} : { event: entry.event }),
      });
    }
    try {
      await this.options.ledger.writeFleet(writes);
      this.counts.written += writes.length;
      this.remember(writes);
    } catch (error) {
      // Back in, under anything newer recorded meanwhile, and oldest first again.
      const newer = this.pending;
      this.pending = new Map();
      this.pendingBytes = 0;
      for (const [machineId, entry] of taken) this.put(machineId, entry);
      for (const [machineId, entry] of newer) this.put(machineId, entry);
      this.enforceBound();
      throw error;
    }
  }

  private report(error: unknown): void {
    const dropped = this.unreported;
    this.unreported = 0;
    this.options.onError(error, dropped);
  }

  private schedule(): void {
    if (this.cancelTimer !== undefined || this.closed) return;
    this.cancelTimer = this.startTimer(() => {
      this.cancelTimer = undefined;
      this.flush().catch((error: unknown) => this.report(error));
    }, this.options.flushIntervalMs);
  }
}
