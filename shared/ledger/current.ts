import { type LedgerTable, partitionKeyName, strip } from './access.ts';
import { endLease, takeLease } from './lease.ts';
import type { MirrorCurrent, ReleaseRef, StreamRef } from './records.ts';
import { ledgerItems, ledgerKindAttribute, ledgerLeases } from './table.ts';
import { versionSortKey } from './versions.ts';

/** The mirror's current version of each source's channel and board, and the lease on writing its `current/` files. */
export interface CurrentLedger {
  /** Moves the mirror's current version of a source's channel and board, never backwards. */
  advanceCurrent(release: ReleaseRef): Promise<boolean>;
  getCurrent(stream: StreamRef): Promise<MirrorCurrent | undefined>;
  /**
   * A short lease per channel and board that serialises writes of the store's `current/` files, so an older
   * finalize cannot write its file after a newer one. True if `holder` now holds it.
   */
  acquireCurrentSync(stream: StreamRef, holder: string, leaseSeconds: number): Promise<boolean>;
  releaseCurrentSync(stream: StreamRef, holder: string): Promise<void>;
}

const syncLease = ledgerLeases.currentSync;

export function currentLedger(table: LedgerTable): CurrentLedger {
  return {
    advanceCurrent(release) {
      const versionKey = versionSortKey(release.version);
      const item = {
        ...ledgerItems.current(release),
        [ledgerKindAttribute]: 'current',
        source: release.source,
        channel: release.channel,
        board: release.board,
        version: release.version,
        versionKey,
        updatedAt: table.clock().toISOString(),
      };
      return table.put('advance current', item, {
        condition: 'attribute_not_exists(#pk) OR versionKey < :vk',
        names: partitionKeyName,
        values: { ':vk': versionKey },
      });
    },

    async getCurrent(stream) {
      const item = await table.get('get current', ledgerItems.current(stream));
      return item === undefined ? undefined : strip<MirrorCurrent>(item);
    },

    async acquireCurrentSync(stream, holder, leaseSeconds) {
      const taken = await takeLease(
        table,
        'acquire current sync',
        ledgerItems.currentSync(stream),
        { ...syncLease, holder, seconds: leaseSeconds },
        {
          set: ['#kind = :kind'],
          names: { '#kind': ledgerKindAttribute },
          values: { ':kind': 'current-sync' },
        },
      );
      return taken !== undefined;
    },

    async releaseCurrentSync(stream, holder) {
      await endLease(table, 'release current sync', ledgerItems.currentSync(stream), {
        ...syncLease,
        holder,
      });
    },
  };
}
