import { describe, expect, it } from 'vitest';
import type { MirrorCurrent } from '../../shared/ledger/records.ts';
import { parseGroupInput, type UpdateGroup, type UpdateGroupRequest } from '../../shared/update/groups.ts';
import { machinePosition, periodStart, rolloutShare, windowOpen } from '../../shared/update/rollout.ts';
import { createUpdateService } from '../../shared/update/wiring.ts';
import { channelSources, memoryGroups, memoryPayloads, omahaCheck } from '../support/update-fixtures.ts';

const machines = Array.from(
  { length: 10_000 },
  (_, i) => `${i.toString(16).padStart(8, '0')}${'5a'.repeat(12)}`,
);
const releasedAt = new Date('2026-12-01T00:00:00Z');
const minutes = (n: number) => new Date(releasedAt.getTime() + n * 60_000);

function fleet() {
  let now = releasedAt;
  const groups = memoryGroups();
  const payloads = memoryPayloads();
  const currents = new Map<string, MirrorCurrent>([
    [
      'stable',
      {
        source: 'flatcar',
        channel: 'stable',
        board: 'amd64-usr',
        version: '4152.2.0',
        updatedAt: releasedAt.toISOString(),
      },
    ],
  ]);
  payloads.add('amd64-usr', '4152.2.0', 'flatcar_production_update.gz');
  payloads.add('amd64-usr', '4116.0.0', 'flatcar_production_update.gz');
  const service = createUpdateService(
    {
      groups,
      current: { getCurrent: async ({ channel }) => currents.get(channel) },
      payloads,
      clock: () => now,
      cacheTtlMs: 0,
    },
    { mirrorBaseUrl: 'http://127.0.0.1:8080/mirror', sources: channelSources('stable', 'beta') },
  );
  const put = async (name: string, input: UpdateGroupRequest, extra = {}) => {
    const group: UpdateGroup = { ...parseGroupInput(input), name, updatedAt: now.toISOString(), ...extra };
    await groups.putGroup(group);
  };
  /** The version each machine is offered (undefined: noupdate). */
  const offered = async (track: string, machineId: string, version = '4081.2.0') => {
    const result = await service.omaha.answer(omahaCheck({ track, machineId, version }));
    expect(result.status).toBe(200);
    return /<manifest version="([^"]+)"/.exec(result.body)?.[1];
  };
  const count = async (track: string, ids: readonly string[] = machines) => {
    let updates = 0;
    for (const id of ids) if ((await offered(track, id)) !== undefined) updates++;
    return updates;
  };
  return {
    put,
    offered,
    count,
    setNow: (at: Date) => {
      now = at;
    },
  };
}

describe('rollout decisions over 10,000 simulated machines', () => {
  it('holds a linearly growing percentage within 2 points, and never takes an update back', async () => {
    const f = fleet();
    await f.put('stable', {
      channel: 'stable',
      rollout: { kind: 'percent', percent: 100, overMinutes: 100 },
    });
    let before = new Set<string>();
    for (const at of [10, 45, 80]) {
      f.setNow(minutes(at));
      const admitted = new Set<string>();
      for (const id of machines) if ((await f.offered('stable', id)) === '4152.2.0') admitted.add(id);
      expect(Math.abs((admitted.size / machines.length) * 100 - at), `at ${at} minutes`).toBeLessThanOrEqual(
        2,
      );
      for (const id of before) expect(admitted.has(id)).toBe(true);
      before = admitted;
    }
  });

  it('holds a fixed percentage within 2 points for several releases, each its own order', () => {
    const share = 30;
    const admittedBy = (version: string) =>
      new Set(machines.filter((id) => machinePosition('stable', version, id) < share));
    const first = admittedBy('4152.2.0');
    const second = admittedBy('4186.1.0');
    for (const set of [first, second])
      expect(Math.abs((set.size / machines.length) * 100 - share)).toBeLessThanOrEqual(2);
    const both = [...first].filter((id) => second.has(id)).length;
    // Independent orders: about 30 % of 30 % are in both, not all of them.
    expect(Math.abs((both / machines.length) * 100 - 9)).toBeLessThanOrEqual(2);
  });

  it('offers nothing while a group is paused, and everything once resumed', async () => {
    const f = fleet();
    const sample = machines.slice(0, 500);
    await f.put('stable', { channel: 'stable', paused: true });
    expect(await f.count('stable', sample)).toBe(0);
    await f.put('stable', { channel: 'stable', paused: false });
    expect(await f.count('stable', sample)).toBe(500);
  });

  it('offers a pinned version, not the channel’s newer one, and nothing to machines already on it', async () => {
    const f = fleet();
    await f.put('pinned', { channel: 'stable', version: '4116.0.0' });
    expect(await f.offered('pinned', machines[0] ?? '')).toBe('4116.0.0');
    expect(await f.offered('pinned', machines[1] ?? '', '4116.0.0')).toBeUndefined();
    expect(await f.offered('stable', machines[1] ?? '', '4116.0.0')).toBe('4152.2.0');
    await f.put('unverified', { channel: 'stable', version: '4200.0.0' });
    expect(await f.offered('unverified', machines[0] ?? '')).toBeUndefined();
  });

  it('admits at most N distinct machines per period, the same ones again, then N more next period', async () => {
    const f = fleet();
    await f.put('capped', {
      channel: 'stable',
      rollout: { kind: 'per-period', maxUpdates: 150, periodMinutes: 60 },
    });
    const sample = machines.slice(0, 1000);
    f.setNow(minutes(5));
    const firstPeriod = new Set<string>();
    for (const id of sample) if ((await f.offered('capped', id)) !== undefined) firstPeriod.add(id);
    expect(firstPeriod.size).toBe(150);
    f.setNow(minutes(50));
    for (const id of firstPeriod) expect(await f.offered('capped', id)).toBe('4152.2.0');
    expect(await f.count('capped', sample)).toBe(150);
    f.setNow(minutes(61));
    const rest = sample.filter((id) => !firstPeriod.has(id));
    expect(await f.count('capped', rest)).toBe(150);
  });

  it('offers updates only inside the update window', async () => {
    const f = fleet();
    await f.put('night', { channel: 'stable', window: { start: '22:00', end: '04:00' } });
    f.setNow(new Date('2026-12-01T12:00:00Z'));
    expect(await f.offered('night', machines[0] ?? '')).toBeUndefined();
    f.setNow(new Date('2026-12-01T23:30:00Z'));
    expect(await f.offered('night', machines[0] ?? '')).toBe('4152.2.0');
  });

  it('lets a track that names a channel follow it with no group, and a group override that', async () => {
    const f = fleet();
    expect(await f.offered('stable', machines[0] ?? '')).toBe('4152.2.0');
    await f.put('stable', { channel: 'stable', version: '4116.0.0' });
    expect(await f.offered('stable', machines[0] ?? '')).toBe('4116.0.0');
  });
});

describe('rollout arithmetic', () => {
  it('grows the share linearly from its start to its end, then holds it', () => {
    const rollout = parseGroupInput({
      channel: 'stable',
      rollout: { kind: 'percent', startPercent: 10, percent: 60, overMinutes: 50 },
    }).rollout;
    expect(rolloutShare(rollout, releasedAt, minutes(-5))).toBe(10);
    expect(rolloutShare(rollout, releasedAt, minutes(25))).toBe(35);
    expect(rolloutShare(rollout, releasedAt, minutes(500))).toBe(60);
    expect(rolloutShare({ kind: 'all' }, releasedAt, releasedAt)).toBe(100);
  });

  it('opens windows on their days, over midnight too', () => {
    const window = { start: '22:00', end: '04:00', days: ['sat' as const] };
    expect(windowOpen(window, new Date('2026-12-05T22:30:00Z'))).toBe(true); // Saturday
    expect(windowOpen(window, new Date('2026-12-06T03:59:00Z'))).toBe(true); // Sunday morning
    expect(windowOpen(window, new Date('2026-12-06T04:00:00Z'))).toBe(false);
    expect(windowOpen(window, new Date('2026-12-06T22:30:00Z'))).toBe(false); // Sunday night
    expect(windowOpen({ start: '09:00', end: '17:00' }, new Date('2026-12-06T08:59:00Z'))).toBe(false);
    expect(windowOpen({ start: '09:00', end: '17:00' }, new Date('2026-12-06T09:00:00Z'))).toBe(true);
    expect(windowOpen(undefined, new Date())).toBe(true);
  });

  it('counts periods from the epoch', () => {
    expect(periodStart(60, new Date('2026-12-01T10:59:59Z'))).toBe('2026-12-01T10:00:00.000Z');
    expect(periodStart(1440, new Date('2026-12-01T10:59:59Z'))).toBe('2026-12-01T00:00:00.000Z');
  });

  it('names each bad field of a group', () => {
    expect(() =>
      parseGroupInput({
        channel: 'Stable!',
        rollout: { kind: 'per-period', maxUpdates: 0 },
        window: { start: '25:00' },
      }),
    ).toThrow(
      /channel[\s\S]*rollout\.maxUpdates[\s\S]*rollout\.periodMinutes[\s\S]*window\.start[\s\S]*window\.end/,
    );
  });
});
