import { describe, expect, it } from 'vitest';
import { versionPlot } from '../../local/status/fleet-render.ts';
import { eventStatus, machineStatus, redactId } from '../../shared/update/fleet-status.ts';

describe("the fleet's reading of update_engine's events", () => {
  it('maps each Omaha event type and result to a status', () => {
    const cases: [number, number, string][] = [
      [13, 1, 'download-started'],
      [14, 1, 'download-finished'],
      [1, 1, 'download-finished'],
      [2, 1, 'installed'],
      [3, 1, 'installed'],
      [3, 2, 'complete'],
      [3, 0, 'error'],
      [13, 0, 'error'],
      [14, 9, 'deferred'],
      [54, 1, 'other'],
    ];
    expect(cases.map(([type, result]) => [type, result, eventStatus({ type, result })])).toEqual(cases);
  });

  it('calls a machine offered an update after its last event update-offered, and one never offered idle', () => {
    const check = (at: string, kind: 'update' | 'noupdate') => ({
      at,
      appId: 'a',
      group: 'stable',
      version: '1.0.0',
      board: 'amd64-usr',
      answer: kind === 'update' ? { kind, version: '2.0.0' } : { kind },
    });
    const event = {
      at: '2026-12-03T08:05:00Z',
      type: 3,
      result: 0,
      status: 'error' as const,
      version: '1.0.0',
    };
    expect(machineStatus({ machineId: 'm', check: check('2026-12-03T08:00:00Z', 'noupdate') })).toBe('idle');
    expect(machineStatus({ machineId: 'm', check: check('2026-12-03T08:00:00Z', 'update') })).toBe(
      'update-offered',
    );
    expect(
      machineStatus({ machineId: 'm', check: check('2026-12-03T08:00:00Z', 'update'), lastEvent: event }),
    ).toBe('error');
    expect(
      machineStatus({ machineId: 'm', check: check('2026-12-03T08:10:00Z', 'update'), lastEvent: event }),
    ).toBe('update-offered');
  });

  it('shortens ids to six characters, and shows nothing of a short one', () => {
    expect(redactId('abce671d61774703ac7be60715220bfe')).toBe('abce67…');
    expect(redactId('abc')).toBe('…');
  });

  it('plots one band per version, the oldest beyond seven as one, and waits for two snapshots', async () => {
    expect(String(await versionPlot([]))).toContain('appears after the second count');
    const byVersion = Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`${i + 1}.0.0`, 1]));
    const snapshots = ['2026-12-03T08:00:00.000Z', '2026-12-03T08:05:00.000Z'].map((at) => ({
      at,
      active: 9,
      byVersion,
      byStatus: {},
    }));
    const svg = String(await versionPlot(snapshots));
    const bands = [...svg.matchAll(/<polygon data-version="([^"]+)"/g)].map((m) => m[1]);
    expect(bands).toEqual(['older', '3.0.0', '4.0.0', '5.0.0', '6.0.0', '7.0.0', '8.0.0', '9.0.0']);
    expect(svg).toContain('older (2)');
  });
});
