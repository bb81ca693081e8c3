import { beforeEach, describe, expect, it } from 'vitest';
import type { ArtifactPlan, Ledger } from '../../shared/ledger/ledger.ts';
import { emulatorClients } from '../support/emulators.ts';
import { facts, freshLedger, plans, ref, release } from '../support/ledger-fixtures.ts';

const _clients = emulatorClients();

describe('the releases part of the ledger: claim and finalize (dynalite)', () => {
  let now: Date;
  let ledger: Ledger;

  beforeEach(async () => {
    now = new Date('2026-11-01T12:00:00Z');
    ({ ledger } = await freshLedger(() => now));
  });

  it('lets exactly one of many concurrent pollers claim a release', async () => {
    const claims = await Promise.all(Array.from({ length: 8 }, () => ledger.claimRelease(release, plans)));
    expect(claims.filter(Boolean)).toHaveLength(1);
    const detail = await ledger.getRelease(release);
    expect(detail?.required).toEqual(['version.txt', 'image.bin']);
    expect(detail?.artifactStates.map((a) => [a.artifact, a.state, a.attempts])).toEqual(
      expect.arrayContaining([
        ['version.txt', 'pending', 0],
        ['image.bin', 'pending', 0],
        ['extra.txt', 'pending', 0],
      ]),
    );
  });

  it('finalizes only when every required artifact is done, and then for exactly one caller', async () => {
    await ledger.claimRelease(release, plans);
    await ledger.markVerified(ref('version.txt'), facts);
    await ledger.markVerified(ref('image.bin'), facts);
    expect(await ledger.beginFinalize(release, 60)).toBeUndefined();
    await ledger.markMissing(ref('extra.txt'), '404');
    const winners = (
      await Promise.all(Array.from({ length: 6 }, () => ledger.beginFinalize(release, 60)))
    ).filter((d) => d !== undefined);
    expect(winners).toHaveLength(1);
    expect(await ledger.beginFinalize(release, 60)).toBeUndefined();
    expect(await ledger.completeFinalize(release)).toBe(true);
    expect(await ledger.completeFinalize(release)).toBe(false);
    expect(await ledger.beginFinalize(release, 60)).toBeUndefined();
    expect(await ledger.recordAnnounced(release)).toBe(true);
    expect(await ledger.recordAnnounced(release)).toBe(false);
    now = new Date(now.getTime() + 3600_000);
    expect(await ledger.beginFinalize(release, 60)).toBeUndefined();
    expect(await ledger.getRelease(release)).toMatchObject({
      finalizedAt: expect.any(String),
      announcedAt: expect.any(String),
    });
    expect((await ledger.getRelease(release))?.announcePending).toBeUndefined();
  });

  it('counts an optional artifact that failed verification as done, and a required one as not', async () => {
    await ledger.claimRelease(release, plans);
    await ledger.markVerified(ref('version.txt'), facts);
    await ledger.markVerified(ref('image.bin'), facts);
    await ledger.markFailedVerification(ref('extra.txt'), 'tampered');
    expect((await ledger.beginFinalize(release, 60))?.artifactStates).toHaveLength(3);

    const other = { ...release, version: '3510.2.9' };
    await ledger.claimRelease(other, plans);
    await ledger.markVerified({ ...other, artifact: 'version.txt' }, facts);
    await ledger.markFailedVerification({ ...other, artifact: 'image.bin' }, 'tampered');
    await ledger.markVerified({ ...other, artifact: 'extra.txt' }, facts);
    expect(await ledger.beginFinalize(other, 60)).toBeUndefined();
  });

  it('hands a finalized but unannounced release out again, only to publish', async () => {
    await ledger.claimRelease(release, [plans[0] as ArtifactPlan]);
    await ledger.markVerified(ref('version.txt'), facts);
    expect(await ledger.beginFinalize(release, 60)).toBeDefined();
    expect(await ledger.completeFinalize(release)).toBe(true);
    expect(await ledger.beginFinalize(release, 60)).toBeUndefined();
    await ledger.abandonFinalize(release);
    const again = await ledger.beginFinalize(release, 60);
    expect(again).toMatchObject({ finalizedAt: expect.any(String), announcePending: true });
    expect(await ledger.recordAnnounced(release)).toBe(true);
    now = new Date(now.getTime() + 3600_000);
    expect(await ledger.beginFinalize(release, 60)).toBeUndefined();
  });

  it('does not finalize while a required artifact is missing', async () => {
    await ledger.claimRelease(release, plans);
    await ledger.markVerified(ref('version.txt'), facts);
    await ledger.markMissing(ref('image.bin'), '404');
    await ledger.markVerified(ref('extra.txt'), facts);
    expect(await ledger.beginFinalize(release, 60)).toBeUndefined();
  });

  it('gives an abandoned finalize to the next caller', async () => {
    await ledger.claimRelease(release, [plans[0] as ArtifactPlan]);
    await ledger.markVerified(ref('version.txt'), facts);
    expect(await ledger.beginFinalize(release, 600)).toBeDefined();
    await ledger.abandonFinalize(release);
    expect(await ledger.beginFinalize(release, 600)).toBeDefined();
  });

  it('lists releases by source, channel and board, and poll states, for the status page', async () => {
    await ledger.claimRelease(release, plans);
    await ledger.claimRelease({ ...release, version: '3510.2.10' }, plans);
    await ledger.claimRelease({ ...release, channel: 'beta' }, plans);
    await ledger.claimRelease({ ...release, channel: 'stable2' }, plans);
    const stable = { source: 'flatcar', channel: 'stable', board: 'amd64-usr' };
    expect((await ledger.listReleases(stable)).map((r) => r.version)).toEqual(['3510.2.8', '3510.2.10']);
    expect((await ledger.listReleases({ source: 'flatcar', channel: 'beta' })).map((r) => r.channel)).toEqual(
      ['beta'],
    );
    expect((await ledger.listReleases({ channel: 'beta' })).map((r) => r.channel)).toEqual(['beta']);
    expect(await ledger.listReleases()).toHaveLength(4);
    await ledger.savePollState({
      source: 'flatcar',
      channel: 'stable',
      board: 'amd64-usr',
      etag: '"x"',
      lastVersion: '1.0',
      checkedAt: now.toISOString(),
    });
    expect(await ledger.listPollStates()).toEqual([
      {
        source: 'flatcar',
        channel: 'stable',
        board: 'amd64-usr',
        etag: '"x"',
        lastVersion: '1.0',
        checkedAt: now.toISOString(),
      },
    ]);
    expect(await ledger.getPollState(stable)).toMatchObject({ etag: '"x"' });
  });

  it('keeps two sources that share a channel name, version and board apart', async () => {
    const coreos = { ...release, source: 'coreos' };
    expect(await ledger.claimRelease(release, plans)).toBe(true);
    expect(await ledger.claimRelease(coreos, [plans[0] as ArtifactPlan])).toBe(true);
    await ledger.markVerified({ ...coreos, artifact: 'version.txt' }, facts);
    expect((await ledger.getRelease(coreos))?.artifactStates.map((a) => a.state)).toEqual(['verified']);
    expect((await ledger.getRelease(release))?.artifactStates.map((a) => a.state)).toEqual([
      'pending',
      'pending',
      'pending',
    ]);
    expect((await ledger.listReleases({ source: 'coreos' })).map((r) => r.source)).toEqual(['coreos']);
    expect((await ledger.listReleases({ channel: 'stable' })).map((r) => r.source).sort()).toEqual([
      'coreos',
      'flatcar',
    ]);
  });
});
