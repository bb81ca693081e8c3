import { describe, expect, it } from 'vitest';
import type { FleetWrite } from '../../shared/ledger/fleet.ts';
import type { FleetCheckIn } from '../../shared/update/fleet-record.ts';
import { createFleetRecorder, type StartTimer } from '../../shared/update/fleet-recorder.ts';

/** A timer the test fires by hand: `fire()` runs what is due, as if the interval had passed. */
function manualTimer(): { startTimer: StartTimer; armed: () => number; fire: () => void } {
  let due: (() => void)[] = [];
  return {
    startTimer: (run) => {
      due.push(run);
      return () => {
        due = due.filter((r) => r !== run);
      };
    },
    armed: () => due.length,
    fire: () => {
      const now = due;
      due = [];
      for (const run of now) run();
    },
  };
}

/** The ledger port, recording each flush's writes; `failNext` makes the next n flushes fail. */
function fakeLedger() {
  const flushes: FleetWrite[][] = [];
  let failures = 0;
  let gate: Promise<void> | undefined;
  return {
    flushes,
    failNext(n: number) {
      failures = n;
    },
    hold(until: Promise<void>) {
      gate = until;
    },
    async writeFleet(writes: readonly FleetWrite[]) {
      if (gate !== undefined) await gate;
      if (failures > 0) {
        failures--;
        throw new Error('ledger down');
      }
      flushes.push([...writes]);
    },
  };
}

function checkIn(machineId: string, over: Partial<FleetCheckIn> = {}): FleetCheckIn {
  return {
    machineId,
    appId: 'e96281a6-d1af-4bde-9a0a-97b76e56dc57',
    group: 'stable',
    version: '4081.2.0',
    board: 'amd64-usr',
    at: '2026-12-03T08:00:00.000Z',
    events: [],
    answer: { kind: 'noupdate' },
    ...over,
  };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

function recorder(over: Partial<Parameters<typeof createFleetRecorder>[0]> = {}) {
  const ledger = fakeLedger();
  const timer = manualTimer();
  const errors: { error: unknown; dropped: number }[] = [];
  const fleet = createFleetRecorder({
    ledger,
    flushIntervalMs: 5000,
    flushAtMachines: 100,
    maxMachines: 1000,
    maxBytes: 1024 * 1024,
    unchangedRefreshMs: 0,
    onError: (error, dropped) => errors.push({ error, dropped }),
    startTimer: timer.startTimer,
    ...over,
  });
  return { fleet, ledger, timer, errors };
}

describe('the fleet recorder (write-behind, coalescing per machine)', () => {
  it('coalesces check-ins per machine: one write each, the latest check and the latest event win', async () => {
    const { fleet, ledger } = recorder();
    fleet.record(
      checkIn('m1', { at: '2026-12-03T08:00:00.000Z', answer: { kind: 'update', version: '4152.2.0' } }),
    );
    fleet.record(
      checkIn('m1', {
        at: '2026-12-03T08:00:05.000Z',
        answer: { kind: 'event-ack' },
        events: [{ type: 13, result: 1 }],
      }),
    );
    fleet.record(
      checkIn('m1', {
        at: '2026-12-03T08:00:09.000Z',
        answer: { kind: 'event-ack' },
        events: [
          { type: 14, result: 1 },
          { type: 3, result: 0, errorCode: 53 },
        ],
      }),
    );
    fleet.record(checkIn('m2'));
    fleet.record(checkIn('m2', { version: '4152.2.0', at: '2026-12-03T08:00:10.000Z' }));
    expect(fleet.stats().pending).toBe(2);
    await fleet.flush();
    expect(ledger.flushes).toHaveLength(1);
    const [m1, m2] = ledger.flushes[0] ?? [];
    // The event-only requests kept the offer: the check is the update check's, the event the last reported.
    expect(m1?.check?.answer).toEqual({ kind: 'update', version: '4152.2.0' });
    expect(m1?.check?.at).toBe('2026-12-03T08:00:00.000Z');
    expect(m1?.event).toEqual({
      at: '2026-12-03T08:00:09.000Z',
      type: 3,
      result: 0,
      errorCode: 53,
      status: 'error',
      version: '4081.2.0',
    });
    expect(m2?.check?.version).toBe('4152.2.0');
    expect(m2?.event).toBeUndefined();
    expect(fleet.stats()).toMatchObject({ pending: 0, written: 2, recorded: 5 });
  });

  it('flushes when the interval passes, and not before', async () => {
    const { fleet, ledger, timer } = recorder();
    fleet.record(checkIn('m1'));
    await settle();
    expect(ledger.flushes).toHaveLength(0);
    expect(timer.armed()).toBe(1);
    timer.fire();
    await settle();
    expect(ledger.flushes.map((f) => f.map((w) => w.machineId))).toEqual([['m1']]);
    expect(timer.armed()).toBe(0);
  });

  it('flushes at once when flushAtMachines machines wait, without waiting for the interval', async () => {
    const { fleet, ledger } = recorder({ flushAtMachines: 3 });
    fleet.record(checkIn('m1'));
    fleet.record(checkIn('m2'));
    await settle();
    expect(ledger.flushes).toHaveLength(0);
    fleet.record(checkIn('m3'));
    await settle();
    expect(ledger.flushes.map((f) => f.length)).toEqual([3]);
  });

  it('keeps the states of a failed flush, under newer ones, and writes them on the next interval', async () => {
    const { fleet, ledger, timer, errors } = recorder();
    let open: () => void = () => {};
    ledger.hold(new Promise<void>((resolve) => (open = resolve)));
    ledger.failNext(1);
    fleet.record(checkIn('m1', { version: '1.0.0' }));
    fleet.record(checkIn('m2', { version: '1.0.0' }));
    const failing = fleet.flush();
    // Recorded while the failing flush is in flight: must win over the states it puts back.
    fleet.record(checkIn('m1', { version: '2.0.0', at: '2026-12-03T08:01:00.000Z' }));
    open();
    await expect(failing).rejects.toThrow('ledger down');
    expect(fleet.stats().pending).toBe(2);
    timer.fire();
    await settle();
    expect(errors).toEqual([]);
    const written = ledger.flushes.flat();
    expect(written.map((w) => [w.machineId, w.check?.version])).toEqual([
      ['m2', '1.0.0'],
      ['m1', '2.0.0'],
    ]);
  });

  it('reports a failed timed flush and tries again on the next interval', async () => {
    const { fleet, ledger, timer, errors } = recorder();
    ledger.failNext(1);
    fleet.record(checkIn('m1'));
    timer.fire();
    await settle();
    expect(errors.map((e) => [(e.error as Error).message, e.dropped])).toEqual([['ledger down', 0]]);
    expect(timer.armed()).toBe(1);
    timer.fire();
    await settle();
    expect(ledger.flushes.flat().map((w) => w.machineId)).toEqual(['m1']);
  });

  it('never holds more than maxMachines: the oldest waiting states go first, counted and reported', async () => {
    const { fleet, ledger, errors } = recorder({ maxMachines: 3, flushAtMachines: 1000 });
    ledger.failNext(1);
    for (const id of ['m1', 'm2', 'm3', 'm4', 'm5']) fleet.record(checkIn(id));
    expect(fleet.stats()).toMatchObject({ pending: 3, dropped: 2 });
    await expect(fleet.flush()).rejects.toThrow('ledger down');
    await fleet.flush();
    expect(ledger.flushes.flat().map((w) => w.machineId)).toEqual(['m3', 'm4', 'm5']);
    expect(errors.map((e) => e.dropped)).toEqual([2]);
  });

  it('never holds more than maxBytes of waiting state', () => {
    const { fleet } = recorder({ maxBytes: 4096, flushAtMachines: 1000 });
    for (let i = 0; i < 100; i++) fleet.record(checkIn(`machine-${i}`, { group: 'g'.repeat(100) }));
    const stats = fleet.stats();
    expect(stats.pendingBytes).toBeLessThanOrEqual(4096);
    expect(stats.pending).toBeGreaterThan(0);
    expect(stats.pending + stats.dropped).toBe(100);
  });

  it('drops ids that are not ids and values the store would refuse, and never throws into the endpoint', async () => {
    const { fleet, ledger } = recorder();
    fleet.record(checkIn('bad#id'));
    fleet.record(checkIn(''));
    fleet.record(checkIn('x'.repeat(200)));
    // One oversized value would make the store refuse the whole batch, at every retry.
    fleet.record(checkIn('m2', { group: 'g'.repeat(129) }));
    fleet.record(checkIn('m3', { at: 'yesterday' }));
    fleet.record(checkIn('m4', { events: [{ type: Number.NaN, result: 1 }], answer: { kind: 'event-ack' } }));
    fleet.record(checkIn('m1', { bootId: 'not a boot id' }));
    await fleet.flush();
    expect(ledger.flushes.flat().map((w) => [w.machineId, w.check?.bootId])).toEqual([['m1', undefined]]);
    expect(fleet.stats().dropped).toBe(5);
  });

  it('writes a check-in that changes nothing only once per unchangedRefreshMs, and any change at once', async () => {
    const { fleet, ledger } = recorder({ unchangedRefreshMs: 600_000 });
    const at = (minute: number) =>
      new Date(Date.parse('2026-12-03T08:00:00Z') + minute * 60_000).toISOString();
    fleet.record(checkIn('m1', { at: at(0) }));
    await fleet.flush();
    fleet.record(checkIn('m1', { at: at(1) }));
    fleet.record(checkIn('m1', { at: at(2) }));
    expect(fleet.stats()).toMatchObject({ pending: 0, unchanged: 2 });
    // An event, another answer, another version: news, written at once.
    fleet.record(
      checkIn('m1', { at: at(3), events: [{ type: 13, result: 1 }], answer: { kind: 'event-ack' } }),
    );
    await fleet.flush();
    fleet.record(checkIn('m1', { at: at(4), answer: { kind: 'update', version: '4152.2.0' } }));
    await fleet.flush();
    fleet.record(checkIn('m1', { at: at(5), answer: { kind: 'update', version: '4152.2.0' } }));
    // Ten minutes after the last write, the same state is written again, so the last check stays fresh.
    fleet.record(checkIn('m1', { at: at(14), answer: { kind: 'update', version: '4152.2.0' } }));
    await fleet.flush();
    expect(ledger.flushes.map((f) => f.map((w) => [w.check?.at ?? '-', w.event?.status ?? '-']))).toEqual([
      [[at(0), '-']],
      [['-', 'download-started']],
      [[at(4), '-']],
      [[at(14), '-']],
    ]);
    expect(fleet.stats().unchanged).toBe(3);
  });

  it('writes what is left on close and arms no timer after it', async () => {
    const { fleet, ledger, timer } = recorder();
    fleet.record(checkIn('m1'));
    await fleet.close();
    expect(ledger.flushes.flat().map((w) => w.machineId)).toEqual(['m1']);
    expect(timer.armed()).toBe(0);
  });
});
