import { type LedgerTable, partitionKeyName, strip } from './access.ts';
import { endLease, takeLease } from './lease.ts';
import type { ReleaseRecord, ReleaseRef, StreamRef } from './records.ts';
import { listReleaseIndex } from './releases.ts';
import { ledgerKeySchema as k, ledgerIndex, ledgerItems, ledgerKey, ledgerLeases } from './table.ts';

/**
 * Retention's side of the releases. A prune is marked before anything is deleted and the mark is the last
 * thing to go, so a run that dies half-way leaves a marked release that a later run finishes. The mark and
 * every finish hold a lease, so two runs never delete (and announce) the same release at once.
 */
export interface PruneLedger {
  /**
   * Marks an announced release as being pruned, moves it from the release listing to the pruning one and
   * takes its prune lease, in one conditional write; the marked record for the one caller that made the
   * mark, undefined for every other.
   */
  markPruning(
    release: ReleaseRef,
    keepReleases: number,
    leaseSeconds: number,
  ): Promise<ReleaseRecord | undefined>;
  /** Takes the prune lease of a marked release, to finish its prune; the record, or undefined if not free. */
  claimPrune(release: ReleaseRef, leaseSeconds: number): Promise<ReleaseRecord | undefined>;
  /** Gives the prune lease back after a failed attempt, so the next run need not wait for it to run out. */
  releasePrune(release: ReleaseRef): Promise<void>;
  /** Releases marked and not yet forgotten, oldest version first; all of them, or one channel (and board). */
  listPruning(filter?: Partial<StreamRef>): Promise<ReleaseRecord[]>;
  /** Deletes the artifact records of a marked release; returns how many were left to delete. */
  deletePrunedArtifacts(release: ReleaseRef): Promise<number>;
  /** Deletes the marked release's own record, the last trace of it; false if it was not marked (or gone). */
  forgetPrunedRelease(release: ReleaseRef): Promise<boolean>;
}

const pruneLease = ledgerLeases.prune;
const marked = 'attribute_exists(pruningSince)';

export function pruneLedger(table: LedgerTable): PruneLedger {
  return {
    async markPruning(release, keepReleases, leaseSeconds) {
      const taken = await takeLease(
        table,
        'mark pruning',
        ledgerItems.release(release),
        { ...pruneLease, seconds: leaseSeconds },
        {
          set: ['pruningSince = :now', 'pruneKeep = :keep', '#g1pk = :pruning'],
          condition: 'attribute_exists(announcedAt) AND attribute_not_exists(pruningSince)',
          names: { '#g1pk': k.gsi1PartitionKey },
          values: {
            ':now': table.clock().toISOString(),
            ':keep': keepReleases,
            ':pruning': ledgerIndex.pruningReleases,
          },
        },
      );
      return taken === undefined ? undefined : strip<ReleaseRecord>(taken);
    },

    async claimPrune(release, leaseSeconds) {
      const taken = await takeLease(
        table,
        'claim prune',
        ledgerItems.release(release),
        { ...pruneLease, seconds: leaseSeconds },
        { condition: marked },
      );
      return taken === undefined ? undefined : strip<ReleaseRecord>(taken);
    },

    async releasePrune(release) {
      await endLease(table, 'release prune', ledgerItems.release(release), pruneLease, {
        condition: marked,
      });
    },

    listPruning: (filter = {}) =>
      listReleaseIndex(table, 'list pruning', ledgerIndex.pruningReleases, filter),

    async deletePrunedArtifacts(release) {
      const key = ledgerItems.release(release);
      const items = await table.query('list pruned artifacts', {
        KeyConditionExpression: '#pk = :pk',
        ExpressionAttributeNames: partitionKeyName,
        ExpressionAttributeValues: { ':pk': key[k.partitionKey] },
        ConsistentRead: true,
      });
      const artifacts = items.filter((item) => ledgerItems.isArtifactSortKey(item[k.sortKey]));
      for (const item of artifacts) {
        await table.delete(
          'delete pruned artifact',
          ledgerKey(String(item[k.partitionKey]), String(item[k.sortKey])),
        );
      }
      return artifacts.length;
    },

    forgetPrunedRelease: (release) =>
      table.delete('forget pruned release', ledgerItems.release(release), { condition: marked }),
  };
}
