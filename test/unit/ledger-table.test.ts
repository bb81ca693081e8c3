import { describe, expect, it } from 'vitest';
import {
  instanceKeyParts,
  ledgerIndex,
  ledgerIndexEntry,
  ledgerItems,
  ledgerKeySchema,
  ledgerTableInput,
} from '../../shared/ledger/table.ts';

const release = { source: 'flatcar', channel: 'stable', board: 'amd64-usr', version: '3510.2.8' };
const beta = { source: 'coreos', channel: 'beta', board: 'arm64-usr' };

describe('the ledger table layout', () => {
  it('keeps the key formats that items written on a deployed table carry, the source first', () => {
    expect(ledgerItems.release(release)).toEqual({
      pk: 'rel#flatcar#stable#amd64-usr#3510.2.8',
      sk: '#release',
    });
    expect(ledgerItems.artifact({ ...release, artifact: 'x.bin' })).toEqual({
      pk: 'rel#flatcar#stable#amd64-usr#3510.2.8',
      sk: 'artifact#x.bin',
    });
    expect(ledgerItems.release({ ...release, source: 'coreos' })).not.toEqual(ledgerItems.release(release));
    expect(ledgerItems.pollState(beta)).toEqual({ pk: 'poll#coreos#beta#arm64-usr', sk: 'poll' });
    expect(ledgerItems.current(beta)).toEqual({ pk: 'current#coreos#beta#arm64-usr', sk: 'current' });
    expect(ledgerItems.currentSync(beta)).toEqual({
      pk: 'current#coreos#beta#arm64-usr',
      sk: 'sync-lease',
    });
    expect(ledgerItems.keyWarning('ABCD', '2026-11-01')).toEqual({ pk: 'keywarn#ABCD', sk: '2026-11-01' });
    expect(ledgerItems.trustAlert('0123', '"v1"')).toEqual({ pk: 'trustalert#0123', sk: '"v1"' });
    expect(ledgerItems.address('10.0.0.1')).toEqual({ pk: 'address#10.0.0.1', sk: 'owner' });
    expect(ledgerItems.instance('a')).toEqual({ pk: 'instance#a', sk: 'meta' });
    expect(ledgerItems.instanceAudit('a', 'T#r')).toEqual({ pk: 'instance#a', sk: 'audit#T#r' });
    expect(ledgerItems.auditDayMarker('2026-11-01', 'T#r')).toEqual({
      pk: 'audit-day#2026-11-01',
      sk: 'T#r',
    });
    expect(ledgerIndex).toMatchObject({
      releases: 'release',
      pollStates: 'poll',
      openArtifacts: 'open-artifact',
      awaitingTrust: 'awaiting-trust',
      instances: 'instance-list',
    });
    expect(ledgerIndex.instanceAuditDay('2026-11-01')).toBe('instance-audit#2026-11-01');
    expect(ledgerIndexEntry('release', 's')).toEqual({ gsi1pk: 'release', gsi1sk: 's' });
  });

  it('tells artifact items from the release item of the same partition', () => {
    const artifact = ledgerItems.artifact({ ...release, artifact: 'x' });
    expect(ledgerItems.isArtifactSortKey(artifact[ledgerKeySchema.sortKey])).toBe(true);
    expect(ledgerItems.isArtifactSortKey(ledgerItems.release(release)[ledgerKeySchema.sortKey])).toBe(false);
    expect(ledgerItems.isArtifactSortKey(undefined)).toBe(false);
  });

  it('takes an instance id back out of its partition key', () => {
    const pk = ledgerItems.instance('node-7')[ledgerKeySchema.partitionKey] ?? '';
    expect(pk).toBe(instanceKeyParts.partition('node-7'));
    expect(pk.slice(instanceKeyParts.partitionPrefix.length)).toBe('node-7');
    expect(ledgerItems.instance('node-7')[ledgerKeySchema.sortKey]).toBe(instanceKeyParts.recordSortKey);
  });

  it('creates the table with exactly the keys and the one index the items use', () => {
    const input = ledgerTableInput('t');
    const names = (input.AttributeDefinitions ?? []).map((a) => a.AttributeName).sort();
    expect(names).toEqual(
      Object.values(ledgerKeySchema)
        .filter((name) => name !== ledgerKeySchema.gsi1Name)
        .sort(),
    );
    expect(input.GlobalSecondaryIndexes?.map((index) => index.IndexName)).toEqual([ledgerKeySchema.gsi1Name]);
  });
});
