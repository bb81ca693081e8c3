import type { FleetCheckIn, FleetRecorder } from '../../shared/update/fleet-record.ts';

export const flatcarAppId = 'e96281a6-d1af-4bde-9a0a-97b76e56dc57';

/** A 32-hex-digit machine id, as `/etc/machine-id` holds it. */
export function machineId(n: number, prefix = 'a'): string {
  return `${prefix}${n.toString(16).padStart(31, '0')}`;
}

export function fleetCheckIn(id: string, over: Partial<FleetCheckIn> = {}): FleetCheckIn {
  return {
    machineId: id,
    bootId: `{${id.slice(0, 8)}-0000-4000-8000-${id.slice(-12)}}`,
    appId: flatcarAppId,
    group: 'stable',
    version: '20.0.0',
    board: 'amd64-usr',
    oem: 'openstack',
    at: '2026-12-03T08:00:00.000Z',
    events: [],
    answer: { kind: 'noupdate' },
    ...over,
  };
}

const minutes = (base: string, n: number) => new Date(Date.parse(base) + n * 60_000).toISOString();

/**
 * A fleet mid-rollout of 20.1.0, as update_engine reports it, from `start`:
 * - `stable`: five machines offered 20.1.0; two report the install failing (event 3, result 0, error 20),
 *   one is downloading: 2 of 5 failed, over the default 20 % threshold (`update.failed_rate`).
 * - `beta`: two machines offered 20.1.0, each reporting download, install and, after the reboot, update
 *   complete (event 3, result 2) on 20.1.0: every machine of the group runs it (`update.rolled_out`).
 */
export function recordRollout(recorder: FleetRecorder, start: string): void {
  for (let i = 0; i < 5; i++) {
    const id = machineId(i, 's');
    recorder.record(
      fleetCheckIn(id, { at: minutes(start, 0), answer: { kind: 'update', version: '20.1.0' } }),
    );
    const progress =
      i < 2 ? { type: 3, result: 0, errorCode: 20 } : i === 2 ? { type: 13, result: 1 } : undefined;
    if (progress !== undefined) {
      recorder.record(
        fleetCheckIn(id, { at: minutes(start, 2), events: [progress], answer: { kind: 'event-ack' } }),
      );
    }
  }
  for (let i = 0; i < 2; i++) {
    const id = machineId(i, 'b');
    const beta = { group: 'beta' };
    recorder.record(
      fleetCheckIn(id, { ...beta, at: minutes(start, 0), answer: { kind: 'update', version: '20.1.0' } }),
    );
    for (const [step, type] of [
      [1, 13],
      [2, 14],
      [3, 3],
    ] as const) {
      recorder.record(
        fleetCheckIn(id, {
          ...beta,
          at: minutes(start, step),
          events: [{ type, result: 1 }],
          answer: { kind: 'event-ack' },
        }),
      );
    }
    recorder.record(
      fleetCheckIn(id, {
        ...beta,
        version: '20.1.0',
        at: minutes(start, 6),
        events: [{ type: 3, result: 2 }],
        answer: { kind: 'event-ack' },
      }),
    );
    recorder.record(fleetCheckIn(id, { ...beta, version: '20.1.0', at: minutes(start, 7) }));
  }
}
