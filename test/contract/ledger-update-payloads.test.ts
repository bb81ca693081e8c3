import { beforeEach, describe, expect, it } from 'vitest';
import type { Ledger } from '../../shared/ledger/ledger.ts';
import {
  MAIN_UPDATE_PAYLOAD,
  type UpdatePayloadRecord,
  updatePayloadKey,
} from '../../shared/update/payload-record.ts';
import { emulatorClients } from '../support/emulators.ts';
import { freshLedger } from '../support/ledger-fixtures.ts';

const _clients = emulatorClients();

const board = 'amd64-usr';
const version = '4081.2.0';
const main = { board, version, name: MAIN_UPDATE_PAYLOAD };
const oem = { board, version, name: 'oem-openstack.gz' };

function record(ref: { board: string; version: string; name: string }, size: number): UpdatePayloadRecord {
  return {
    ...ref,
    key: updatePayloadKey(ref.board, ref.version, ref.name),
    size,
    sha1Base64: Buffer.alloc(20, size % 256).toString('base64'),
    sha256Hex: 'ab'.repeat(32),
    verifiedAt: '2026-11-01T12:00:00.000Z',
  };
}

describe('the update payloads part of the ledger (dynalite)', () => {
  let now: Date;
  let ledger: Ledger;

  beforeEach(async () => {
    now = new Date('2026-11-01T12:00:00Z');
    ({ ledger } = await freshLedger(() => now));
  });

  it('plans a release once per board and version, whichever channel names it', async () => {
    expect(
      await ledger.planPayloads({ source: 'flatcar', channel: 'stable', board }, version, [
        main.name,
        oem.name,
      ]),
    ).toEqual([main.name, oem.name]);
    expect(
      await ledger.planPayloads({ source: 'flatcar', channel: 'beta', board }, version, [
        main.name,
        oem.name,
        'oem-qemu.gz',
      ]),
    ).toEqual(['oem-qemu.gz']);
    expect(await ledger.getPayload(main)).toMatchObject({ channel: 'stable', state: 'pending', attempts: 0 });
  });

  it('returns only verified payloads, main first, with the facts the Omaha answer needs', async () => {
    await ledger.planPayloads({ source: 'flatcar', channel: 'stable', board }, version, [
      oem.name,
      'oem-qemu.gz',
      main.name,
    ]);
    expect(await ledger.payloadsFor(board, version)).toEqual([]);
    for (const ref of [oem, main]) {
      const attempt = await ledger.beginPayload(ref, 60);
      expect(attempt.started).toBe(true);
    }
    expect(await ledger.markPayloadVerified(record(oem, 10), 'f'.repeat(64))).toBe(true);
    expect(await ledger.markPayloadVerified(record(main, 20), 'f'.repeat(64))).toBe(true);
    expect(await ledger.markPayloadVerified(record(main, 20), 'f'.repeat(64))).toBe(false);
    expect(await ledger.payloadsFor(board, version)).toEqual([record(main, 20), record(oem, 10)]);
    expect(await ledger.payloadsFor(board, '4081.2.1')).toEqual([]);
    expect(await ledger.payloadsFor('arm64-usr', version)).toEqual([]);
    expect(await ledger.getPayload(main)).toMatchObject({ state: 'verified', signingKey: 'f'.repeat(64) });
  });

  it('leases an attempt to one worker and refuses a payload it never planned', async () => {
    await ledger.planPayloads({ source: 'flatcar', channel: 'stable', board }, version, [main.name]);
    const attempts = await Promise.all([ledger.beginPayload(main, 60), ledger.beginPayload(main, 60)]);
    expect(attempts.filter((a) => a.started)).toHaveLength(1);
    expect(attempts.find((a) => !a.started)).toEqual({ started: false, reason: 'busy' });
    await ledger.endPayloadAttempt(main, 'connection reset');
    expect(await ledger.beginPayload(main, 60)).toMatchObject({ started: true, item: { attempts: 2 } });
    now = new Date(now.getTime() + 61_000);
    expect((await ledger.beginPayload(main, 60)).started).toBe(true);
    expect(await ledger.beginPayload(oem, 60)).toEqual({ started: false, reason: 'unknown' });
  });

  it('keeps a refused payload out of every answer and owes its alert until recorded', async () => {
    await ledger.planPayloads({ source: 'flatcar', channel: 'stable', board }, version, [main.name]);
    await ledger.beginPayload(main, 60);
    expect(await ledger.claimPayloadAlert(main, 30)).toBe(false);
    expect(await ledger.markPayloadFailed(main, 'crau-signature: none verifies')).toBe(true);
    expect(await ledger.markPayloadFailed(main, 'crau-signature: none verifies')).toBe(false);
    expect(await ledger.markPayloadVerified(record(main, 20), 'f'.repeat(64))).toBe(false);
    expect(await ledger.payloadsFor(board, version)).toEqual([]);
    expect(await ledger.beginPayload(main, 60)).toEqual({ started: false, reason: 'failed_verification' });

    const claims = await Promise.all([
      ledger.claimPayloadAlert(main, 30),
      ledger.claimPayloadAlert(main, 30),
    ]);
    expect(claims.filter(Boolean)).toHaveLength(1);
    await ledger.releasePayloadAlert(main);
    expect(await ledger.claimPayloadAlert(main, 30)).toBe(true);
    expect(await ledger.recordPayloadAlert(main)).toBe(true);
    expect(await ledger.recordPayloadAlert(main)).toBe(false);
    expect(await ledger.claimPayloadAlert(main, 30)).toBe(false);
    expect(await ledger.getPayload(main)).toMatchObject({
      state: 'failed_verification',
      lastError: 'crau-signature: none verifies',
    });
  });

  it('lists pending payloads untouched since a time for the sweep, each taken by one sweep', async () => {
    await ledger.planPayloads({ source: 'flatcar', channel: 'stable', board }, version, [
      main.name,
      oem.name,
    ]);
    await ledger.beginPayload(oem, 60);
    await ledger.markPayloadMissing(oem, '404');
    expect(await ledger.beginPayload(oem, 60)).toEqual({ started: false, reason: 'missing' });
    now = new Date(now.getTime() + 60_000);
    const stalled = await ledger.listStalledPayloads(now, 50);
    expect(stalled.map((item) => item.name)).toEqual([main.name]);
    const seen = stalled[0]?.updatedAt ?? '';
    const touches = await Promise.all([
      ledger.touchStalledPayload(main, seen),
      ledger.touchStalledPayload(main, seen),
    ]);
    expect(touches.filter(Boolean)).toHaveLength(1);
    expect(await ledger.listStalledPayloads(now, 50)).toEqual([]);
    expect(await ledger.listStalledPayloads(new Date(now.getTime() + 1), 50)).toHaveLength(1);
  });
});
