import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { beforeEach, describe, expect, it } from 'vitest';
import { createDynamoLedger, type Ledger } from '../../shared/ledger/ledger.ts';
import { emulatorClients } from '../support/emulators.ts';
import { facts, freshLedger, plans, ref, release } from '../support/ledger-fixtures.ts';

const clients = emulatorClients();

describe('the artifacts part of the ledger: attempts, verdicts and the stalled sweep (dynalite)', () => {
  let now: Date;
  let ledger: Ledger;
  let table: string;

  beforeEach(async () => {
    now = new Date('2026-11-01T12:00:00Z');
    ({ table, ledger } = await freshLedger(() => now));
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
});
