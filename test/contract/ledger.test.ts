import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';
import { type ArtifactPlan, createDynamoLedger, type Ledger } from '../../shared/ledger/ledger.ts';
import { versionSortKey } from '../../shared/ledger/versions.ts';
import { compareVersions } from '../../shared/release/version-file.ts';
import { tableActive } from '../integration/mirror-harness.ts';
import { emulatorClients, freshTable } from '../support/emulators.ts';

const clients = emulatorClients();
const release = { channel: 'stable', board: 'amd64-usr', version: '3510.2.8' };
const plans: ArtifactPlan[] = [
  { name: 'version.txt', required: true, url: 'http://o/v', signatureUrl: 'http://o/v.sig' },
  { name: 'image.bin', required: true, url: 'http://o/i', signatureUrl: 'http://o/i.sig' },
  { name: 'extra.txt', required: false, url: 'http://o/e', signatureUrl: 'http://o/e.sig' },
];
const facts = {
  size: 10,
  sha512: 'ab'.repeat(64),
  signingKeyFingerprint: 'A'.repeat(40),
  primaryKeyFingerprint: 'B'.repeat(40),
  signatureCreated: '2026-01-01T00:00:00.000Z',
  hashAlgorithm: 'SHA512',
};
const ref = (artifact: string) => ({ ...release, artifact });

describe('DynamoDB ledger on dynalite', () => {
  let now: Date;
  let ledger: Ledger;
  let table: string;

  beforeEach(async () => {
    now = new Date('2026-11-01T12:00:00Z');
    table = await freshTable(clients);
    await tableActive(table);
    ledger = createDynamoLedger(clients.doc, table, { clock: () => now });
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

  it('leases an artifact to one worker until the lease runs out, counting attempts', async () => {
    await ledger.claimRelease(release, plans);
    const [a, b] = await Promise.all([
      ledger.beginAttempt(ref('image.bin'), 60),
      ledger.beginAttempt(ref('image.bin'), 60),
    ]);
    expect([a.started, b.started].sort()).toEqual([false, true]);
    expect([a, b].find((x) => !x.started)).toEqual({ started: false, reason: 'busy' });
    now = new Date(now.getTime() + 61_000);
    const c = await ledger.beginAttempt(ref('image.bin'), 60);
    expect(c.started && c.record.attempts).toBe(2);
    await ledger.endAttempt(ref('image.bin'), 'connection reset');
    const d = await ledger.beginAttempt(ref('image.bin'), 60);
    expect(d.started).toBe(true);
    expect((await ledger.getArtifact(ref('image.bin')))?.lastError).toBe('connection reset');
  });

  it('refuses an attempt on an unclaimed release, and on verified or failed artifacts', async () => {
    expect(await ledger.beginAttempt(ref('image.bin'), 60)).toEqual({ started: false, reason: 'unknown' });
    await ledger.claimRelease(release, plans);
    expect(await ledger.markVerified(ref('image.bin'), facts)).toBe(true);
    expect(await ledger.markVerified(ref('image.bin'), facts)).toBe(false);
    expect(await ledger.beginAttempt(ref('image.bin'), 60)).toEqual({ started: false, reason: 'verified' });
    expect(await ledger.markFailedVerification(ref('version.txt'), 'tampered')).toBe(true);
    expect(await ledger.markFailedVerification(ref('version.txt'), 'tampered')).toBe(false);
    expect(await ledger.beginAttempt(ref('version.txt'), 60)).toEqual({
      started: false,
      reason: 'failed_verification',
    });
    expect(await ledger.getArtifact(ref('image.bin'))).toMatchObject({ state: 'verified', ...facts });
  });

  it('reports a missing artifact once; a required one stays open for the stall sweep, an optional one does not', async () => {
    await ledger.claimRelease(release, plans);
    expect(await ledger.markMissing(ref('image.bin'), '404')).toBe(true);
    expect(await ledger.markMissing(ref('image.bin'), '404')).toBe(false);
    expect(await ledger.markMissing(ref('extra.txt'), '404')).toBe(true);
    now = new Date(now.getTime() + 3600_000);
    const stalled = await ledger.listStalled(now, 50);
    expect(stalled.map((a) => a.artifact).sort()).toEqual(['image.bin', 'version.txt']);
  });

  it('sends a stalled artifact again once per stall window', async () => {
    await ledger.claimRelease(release, plans);
    const cutoff = new Date(now.getTime() + 1);
    expect(await ledger.listStalled(new Date(now.getTime() - 1), 50)).toEqual([]);
    const stalled = await ledger.listStalled(cutoff, 50);
    expect(stalled).toHaveLength(3);
    now = new Date(now.getTime() + 1000);
    const first = stalled[0];
    if (first === undefined) throw new Error('no stalled artifact');
    const touches = await Promise.all([
      ledger.touchStalled(first, first.updatedAt),
      ledger.touchStalled(first, first.updatedAt),
    ]);
    expect(touches.filter(Boolean)).toHaveLength(1);
    expect((await ledger.listStalled(cutoff, 50)).map((a) => a.artifact)).not.toContain(first.artifact);
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

  it('closes an optional missing artifact on a retry after a lost response, and never re-sends it', async () => {
    await ledger.claimRelease(release, plans);
    let loseResponses = 1;
    const lossy = new Proxy(clients.doc, {
      get(target, property, receiver) {
        if (property !== 'send') return Reflect.get(target, property, receiver);
        return async (command: UpdateCommand) => {
          const out = await target.send(command);
          if (command instanceof UpdateCommand && loseResponses-- > 0) throw new Error('socket hang up');
          return out;
        };
      },
    });
    const flaky = createDynamoLedger(lossy, table, { clock: () => now });
    await expect(flaky.markMissing(ref('extra.txt'), '404')).rejects.toThrow(/mark missing failed/);
    expect(await ledger.getArtifact(ref('extra.txt'))).toMatchObject({ state: 'missing' });
    expect(await ledger.claimAlert(ref('extra.txt'), 'missing', 30)).toBe(true);
    expect(await ledger.markMissing(ref('extra.txt'), '404')).toBe(false);
    const seen = await ledger.getArtifact(ref('extra.txt'));
    expect(await ledger.touchStalled(ref('extra.txt'), seen?.updatedAt ?? '')).toBe(false);
    now = new Date(now.getTime() + 3600_000);
    expect((await ledger.listStalled(now, 50)).map((a) => a.artifact).sort()).toEqual([
      'image.bin',
      'version.txt',
    ]);
  });

  it('serialises writers of current/ with a lease that runs out', async () => {
    expect(await ledger.acquireCurrentSync('stable', 'amd64-usr', 'a', 30)).toBe(true);
    expect(await ledger.acquireCurrentSync('stable', 'amd64-usr', 'b', 30)).toBe(false);
    expect(await ledger.acquireCurrentSync('beta', 'amd64-usr', 'b', 30)).toBe(true);
    await ledger.releaseCurrentSync('stable', 'amd64-usr', 'b');
    expect(await ledger.acquireCurrentSync('stable', 'amd64-usr', 'b', 30)).toBe(false);
    await ledger.releaseCurrentSync('stable', 'amd64-usr', 'a');
    expect(await ledger.acquireCurrentSync('stable', 'amd64-usr', 'b', 30)).toBe(true);
    now = new Date(now.getTime() + 31_000);
    expect(await ledger.acquireCurrentSync('stable', 'amd64-usr', 'a', 30)).toBe(true);
    expect(await ledger.getCurrent('stable', 'amd64-usr')).toBeUndefined();
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

  it('moves the current version only forward, in numeric order', async () => {
    const at = (version: string) => ({ ...release, version });
    expect(await ledger.advanceCurrent(at('3510.2.8'))).toBe(true);
    expect(await ledger.advanceCurrent(at('3510.2.10'))).toBe(true);
    expect(await ledger.advanceCurrent(at('3510.2.9'))).toBe(false);
    expect(await ledger.advanceCurrent(at('3510.2.10'))).toBe(false);
    expect(await ledger.advanceCurrent(at('3510.2.10.0'))).toBe(false);
    expect((await ledger.getCurrent(release.channel, release.board))?.version).toBe('3510.2.10');
    expect(await ledger.getCurrent('beta', release.board)).toBeUndefined();
  });

  it('warns about a signing key once per day', async () => {
    expect(await ledger.recordKeyWarning('C'.repeat(40), '2026-11-01')).toBe(true);
    expect(await ledger.recordKeyWarning('C'.repeat(40), '2026-11-01')).toBe(false);
    expect(await ledger.recordKeyWarning('C'.repeat(40), '2026-11-02')).toBe(true);
  });

  it('lists releases by channel and board, and poll states, for the status page', async () => {
    await ledger.claimRelease(release, plans);
    await ledger.claimRelease({ ...release, version: '3510.2.10' }, plans);
    await ledger.claimRelease({ ...release, channel: 'beta' }, plans);
    await ledger.claimRelease({ ...release, channel: 'stable2' }, plans);
    expect((await ledger.listReleases('stable', 'amd64-usr')).map((r) => r.version)).toEqual([
      '3510.2.8',
      '3510.2.10',
    ]);
    expect((await ledger.listReleases('beta')).map((r) => r.channel)).toEqual(['beta']);
    expect(await ledger.listReleases()).toHaveLength(4);
    await ledger.savePollState({
      channel: 'stable',
      board: 'amd64-usr',
      etag: '"x"',
      lastVersion: '1.0',
      checkedAt: now.toISOString(),
    });
    expect(await ledger.listPollStates()).toEqual([
      {
        channel: 'stable',
        board: 'amd64-usr',
        etag: '"x"',
        lastVersion: '1.0',
        checkedAt: now.toISOString(),
      },
    ]);
    expect(await ledger.getPollState('stable', 'amd64-usr')).toMatchObject({ etag: '"x"' });
  });
});

describe('versionSortKey', () => {
  const version = fc
    .array(fc.oneof(fc.nat({ max: 20 }), fc.nat()), { minLength: 1, maxLength: 6 })
    .map((parts) => parts.join('.'));

  it('orders strings as compareVersions orders versions', () => {
    fc.assert(
      fc.property(version, version, (a, b) => {
        const ka = versionSortKey(a);
        const kb = versionSortKey(b);
        const lexical = ka < kb ? -1 : ka > kb ? 1 : 0;
        expect(lexical).toBe(Math.sign(compareVersions(a, b)));
      }),
    );
  });

  it('refuses anything but digits and dots', () => {
    expect(() => versionSortKey('1.2/../3')).toThrow(/digits and dots/);
    expect(() => versionSortKey('1'.repeat(21))).toThrow(/longer than 20 digits/);
  });
});
