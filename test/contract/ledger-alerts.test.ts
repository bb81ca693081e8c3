import { beforeEach, describe, expect, it } from 'vitest';
import type { ArtifactPlan, Ledger } from '../../shared/ledger/ledger.ts';
import { emulatorClients } from '../support/emulators.ts';
import { facts, freshLedger, plans, ref, release } from '../support/ledger-fixtures.ts';

const _clients = emulatorClients();

describe('the alerts part of the ledger: alerts, key warnings and announcements (dynalite)', () => {
  let now: Date;
  let ledger: Ledger;

  beforeEach(async () => {
    now = new Date('2026-11-01T12:00:00Z');
    ({ ledger } = await freshLedger(() => now));
  });

  it('owes an alert for a terminal state until it is recorded, to one claimer at a time', async () => {
    await ledger.claimRelease(release, plans);
    expect(await ledger.claimAlert(ref('extra.txt'), 'missing', 30)).toBe(false);
    expect(await ledger.markMissing(ref('extra.txt'), '404')).toBe(true);
    const claims = await Promise.all([
      ledger.claimAlert(ref('extra.txt'), 'missing', 30),
      ledger.claimAlert(ref('extra.txt'), 'missing', 30),
    ]);
    expect(claims.filter(Boolean)).toHaveLength(1);
    await ledger.releaseAlert(ref('extra.txt'));
    expect(await ledger.claimAlert(ref('extra.txt'), 'missing', 30)).toBe(true);
    now = new Date(now.getTime() + 31_000);
    expect(await ledger.claimAlert(ref('extra.txt'), 'missing', 30)).toBe(true);
    expect(await ledger.recordAlert(ref('extra.txt'), 'missing')).toBe(true);
    expect(await ledger.recordAlert(ref('extra.txt'), 'missing')).toBe(false);
    expect(await ledger.claimAlert(ref('extra.txt'), 'missing', 30)).toBe(false);
    expect((await ledger.getArtifact(ref('extra.txt')))?.alertedAt).toBeDefined();

    await ledger.markVerified(ref('image.bin'), facts);
    expect(await ledger.markFailedVerification(ref('image.bin'), 'digests-mismatch: differs')).toBe(true);
    expect(await ledger.claimAlert(ref('image.bin'), 'missing', 30)).toBe(false);
    expect(await ledger.claimAlert(ref('image.bin'), 'failed_verification', 30)).toBe(true);
  });

  it('warns about a signing key once per day', async () => {
    expect(await ledger.recordKeyWarning('C'.repeat(40), '2026-11-01')).toBe(true);
    expect(await ledger.recordKeyWarning('C'.repeat(40), '2026-11-01')).toBe(false);
    expect(await ledger.recordKeyWarning('C'.repeat(40), '2026-11-02')).toBe(true);
  });

  it('lists releases claimed before a time and not yet announced, up to a limit', async () => {
    const older = { ...release, version: '3510.2.1' };
    const announced = { ...release, version: '3510.2.2' };
    await ledger.claimRelease(older, plans);
    await ledger.claimRelease(announced, [plans[0] as ArtifactPlan]);
    await ledger.markVerified({ ...announced, artifact: 'version.txt' }, facts);
    expect(await ledger.beginFinalize(announced, 60)).toBeDefined();
    expect(await ledger.completeFinalize(announced)).toBe(true);
    expect(await ledger.recordAnnounced(announced)).toBe(true);
    now = new Date(now.getTime() + 60_000);
    const cutoff = new Date(now.getTime() - 1);
    await ledger.claimRelease(release, plans);
    await ledger.claimRelease({ ...release, channel: 'beta', version: '3600.0.0' }, plans);

    const epoch = new Date('2000-01-01T00:00:00Z');
    expect(await ledger.listUnannounced(epoch, cutoff, 50)).toEqual([older]);
    const later = new Date(now.getTime() + 1);
    expect(
      (await ledger.listUnannounced(epoch, later, 50)).map((r) => `${r.channel}/${r.version}`).sort(),
    ).toEqual(['beta/3600.0.0', 'stable/3510.2.1', 'stable/3510.2.8']);
    expect(await ledger.listUnannounced(epoch, later, 2)).toHaveLength(2);
    expect(await ledger.listUnannounced(epoch, epoch, 50)).toEqual([]);
    expect(
      (await ledger.listUnannounced(new Date(cutoff.getTime() + 1), later, 50)).map((r) => r.version).sort(),
    ).toEqual(['3510.2.8', '3600.0.0']);
  });
});
