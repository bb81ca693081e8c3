import { beforeEach, describe, expect, it } from 'vitest';
import { type ArtifactPlan, createDynamoLedger, type Ledger } from '../../shared/ledger/ledger.ts';
import { releaseState } from '../../shared/mirror/release-state.ts';
import { tableActive } from '../integration/mirror-harness.ts';
import { emulatorClients, freshTable } from '../support/emulators.ts';

const clients = emulatorClients();
const release = { source: 'flatcar', channel: 'stable', board: 'amd64-usr', version: '4000.1.0' };
const plans: ArtifactPlan[] = [
  { name: 'version.txt', required: true, url: 'http://o/v', signatureUrl: 'http://o/v.sig' },
  { name: 'image.bin', required: true, url: 'http://o/i', signatureUrl: 'http://o/i.sig' },
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
const wait = {
  issuer: '0123456789ABCDEF',
  trustVersion: '"etag-1"',
  detail: 'unknown-key: not in the keyring',
};

describe('the awaiting-trust state of the ledger (dynalite)', () => {
  let now: Date;
  let ledger: Ledger;

  beforeEach(async () => {
    now = new Date('2026-11-01T12:00:00Z');
    const table = await freshTable(clients);
    await tableActive(table);
    ledger = createDynamoLedger(clients.doc, table, { clock: () => now });
    await ledger.claimRelease(release, plans);
  });

  it('parks an artifact refused for an unknown signer, apart from the stalled sweep, and refuses attempts on it', async () => {
    expect(await ledger.markAwaitingTrust(ref('image.bin'), wait)).toBe(true);
    expect(await ledger.markAwaitingTrust(ref('image.bin'), wait)).toBe(false);
    expect(await ledger.getArtifact(ref('image.bin'))).toMatchObject({
      state: 'awaiting_trust',
      awaitingIssuer: wait.issuer,
      trustVersion: wait.trustVersion,
      lastError: wait.detail,
    });
    expect(await ledger.beginAttempt(ref('image.bin'), 60)).toEqual({
      started: false,
      reason: 'awaiting_trust',
    });
    now = new Date(now.getTime() + 86_400_000);
    expect((await ledger.listStalled(now, 50)).map((a) => a.artifact)).toEqual(['version.txt']);
    expect((await ledger.listAwaitingTrust(50)).map((a) => a.artifact)).toEqual(['image.bin']);
  });

  it('never parks a verified or finally refused artifact', async () => {
    await ledger.markVerified(ref('version.txt'), facts);
    await ledger.markFailedVerification(ref('image.bin'), 'tampered: differs');
    expect(await ledger.markAwaitingTrust(ref('version.txt'), wait)).toBe(false);
    expect(await ledger.markAwaitingTrust(ref('image.bin'), wait)).toBe(false);
    expect(await ledger.listAwaitingTrust(50)).toEqual([]);
  });

  it('counts a release of verified and awaiting-trust artifacts as awaiting trust, not failed', async () => {
    await ledger.markVerified(ref('version.txt'), facts);
    await ledger.markAwaitingTrust(ref('image.bin'), wait);
    const detail = await ledger.getRelease(release);
    expect(detail === undefined ? undefined : releaseState(detail)).toBe('awaiting-trust');
    expect(await ledger.beginFinalize(release, 60)).toBeUndefined();
  });

  it('requeues an awaiting artifact once, keeping the trust version it was refused under', async () => {
    await ledger.markAwaitingTrust(ref('image.bin'), wait);
    const moves = await Promise.all([
      ledger.requeueArtifact(ref('image.bin'), ['awaiting_trust']),
      ledger.requeueArtifact(ref('image.bin'), ['awaiting_trust']),
    ]);
    expect(moves.filter(Boolean)).toHaveLength(1);
    const record = await ledger.getArtifact(ref('image.bin'));
    expect(record).toMatchObject({ state: 'pending', trustVersion: wait.trustVersion });
    expect(record?.awaitingIssuer).toBeUndefined();
    expect(await ledger.listAwaitingTrust(50)).toEqual([]);
    now = new Date(now.getTime() + 86_400_000);
    expect((await ledger.listStalled(now, 50)).map((a) => a.artifact).sort()).toEqual([
      'image.bin',
      'version.txt',
    ]);
    expect((await ledger.beginAttempt(ref('image.bin'), 60)).started).toBe(true);
  });

  it('requeues a final refusal only when asked for that state', async () => {
    await ledger.markFailedVerification(ref('image.bin'), 'tampered: differs');
    expect(await ledger.requeueArtifact(ref('image.bin'), ['awaiting_trust', 'missing'])).toBe(false);
    expect(await ledger.requeueArtifact(ref('image.bin'), ['failed_verification'])).toBe(true);
    expect((await ledger.getArtifact(ref('image.bin')))?.state).toBe('pending');
  });

  it('hands the alert for a signer and trust version to one caller, and back after a failed publish', async () => {
    const claims = await Promise.all(
      Array.from({ length: 5 }, () => ledger.claimTrustAlert(wait.issuer, 'v1')),
    );
    expect(claims.filter(Boolean)).toHaveLength(1);
    expect(await ledger.claimTrustAlert(wait.issuer, 'v2')).toBe(true);
    await ledger.releaseTrustAlert(wait.issuer, 'v1');
    expect(await ledger.claimTrustAlert(wait.issuer, 'v1')).toBe(true);
  });
});
