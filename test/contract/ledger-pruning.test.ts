import { beforeEach, describe, expect, it } from 'vitest';
import type { Ledger, ReleaseRef } from '../../shared/ledger/ledger.ts';
import { facts, freshLedger, plans } from '../support/ledger-fixtures.ts';

/** A release claimed, every artifact verified, finalized and announced, as the mirror leaves it. */
async function announced(ledger: Ledger, release: ReleaseRef): Promise<void> {
  expect(await ledger.claimRelease(release, plans)).toBe(true);
  for (const plan of plans) {
    expect(await ledger.markVerified({ ...release, artifact: plan.name }, facts)).toBe(true);
  }
  expect(await ledger.beginFinalize(release, 60)).toBeDefined();
  expect(await ledger.completeFinalize(release)).toBe(true);
  expect(await ledger.recordAnnounced(release)).toBe(true);
}

const stream = { source: 'flatcar', channel: 'stable', board: 'amd64-usr' };
const at = (version: string): ReleaseRef => ({ ...stream, version });

describe('the pruning part of the ledger (dynalite)', () => {
  let now: Date;
  let ledger: Ledger;

  beforeEach(async () => {
    now = new Date('2026-11-01T12:00:00Z');
    ({ ledger } = await freshLedger(() => now));
  });

  it('marks only an announced release, for exactly one of many callers, and hides it from the listing', async () => {
    await announced(ledger, at('1.0.0'));
    await announced(ledger, at('1.1.0'));
    await ledger.claimRelease(at('1.2.0'), plans);
    expect(await ledger.markPruning(at('1.2.0'), 2, 60)).toBeUndefined();
    expect(await ledger.markPruning(at('9.9.9'), 2, 60)).toBeUndefined();
    expect(await ledger.getRelease(at('9.9.9'))).toBeUndefined();

    const marks = await Promise.all(Array.from({ length: 6 }, () => ledger.markPruning(at('1.0.0'), 2, 60)));
    const made = marks.filter((mark) => mark !== undefined);
    expect(made.map((mark) => [mark.version, mark.pruneKeep, mark.pruningSince])).toEqual([
      ['1.0.0', 2, now.toISOString()],
    ]);
    expect((await ledger.listReleases(stream)).map((r) => r.version)).toEqual(['1.1.0', '1.2.0']);
    const pruning = await ledger.listPruning(stream);
    expect(pruning.map((r) => [r.version, r.pruneKeep, r.pruningSince])).toEqual([
      ['1.0.0', 2, now.toISOString()],
    ]);
    expect(await ledger.listPruning({ channel: 'beta' })).toEqual([]);
    expect((await ledger.listPruning()).map((r) => r.version)).toEqual(['1.0.0']);
    expect((await ledger.getRelease(at('1.0.0')))?.pruningSince).toBe(now.toISOString());
  });

  it('holds the prune under a lease: taken with the mark, free again when given back or run out', async () => {
    await announced(ledger, at('1.0.0'));
    expect(await ledger.claimPrune(at('1.0.0'), 60)).toBeUndefined();
    expect(await ledger.markPruning(at('1.0.0'), 1, 60)).toBeDefined();
    expect(await ledger.claimPrune(at('1.0.0'), 60)).toBeUndefined();
    await ledger.releasePrune(at('1.0.0'));
    const claimed = await ledger.claimPrune(at('1.0.0'), 60);
    expect(claimed?.version).toBe('1.0.0');
    expect(claimed?.pruneKeep).toBe(1);
    expect(await ledger.claimPrune(at('1.0.0'), 60)).toBeUndefined();
    now = new Date(now.getTime() + 61_000);
    expect((await ledger.claimPrune(at('1.0.0'), 60))?.version).toBe('1.0.0');
  });

  it('deletes the artifact records, then forgets the release only while it is marked', async () => {
    await announced(ledger, at('1.0.0'));
    await announced(ledger, at('1.1.0'));
    expect(await ledger.forgetPrunedRelease(at('1.0.0'))).toBe(false);
    expect(await ledger.markPruning(at('1.0.0'), 1, 60)).toBeDefined();
    expect(await ledger.deletePrunedArtifacts(at('1.0.0'))).toBe(plans.length);
    expect(await ledger.deletePrunedArtifacts(at('1.0.0'))).toBe(0);
    expect((await ledger.getRelease(at('1.0.0')))?.artifactStates).toEqual([]);
    expect(await ledger.forgetPrunedRelease(at('1.0.0'))).toBe(true);
    expect(await ledger.forgetPrunedRelease(at('1.0.0'))).toBe(false);
    expect(await ledger.getRelease(at('1.0.0'))).toBeUndefined();
    expect(await ledger.listPruning()).toEqual([]);
    expect((await ledger.getRelease(at('1.1.0')))?.artifactStates).toHaveLength(plans.length);
  });
});
