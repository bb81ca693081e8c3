import { type LedgerTable, partitionKeyName, strip } from './access.ts';
import { endLease, takeLease } from './lease.ts';
import type { MirrorCurrent, ReleaseRef } from './records.ts';
import { ledgerItems, ledgerKindAttribute, ledgerLeases } from './table.ts';
import { versionSortKey } from './versions.ts';

/** The mirror's current version of each channel and board, and the lease on writing its `current/` files. */
export interface CurrentLedger {
  /** Moves the mirror's current version of a channel and board, never backwards. */
  advanceCurrent(release: ReleaseRef): Promise<boolean>;
  getCurrent(channel: string, board: string): Promise<MirrorCurrent | undefined>;
  /**
   * A short lease per channel and board that serialises writes of the store's `current/` files, so an older
   * finalize cannot write its file after a newer one. True if `holder` now holds it.
   */
  acquireCurrentSync(channel: string, board: string, holder: string, leaseSeconds: number): Promise<boolean>;
  releaseCurrentSync(channel: string, board: string, holder: string): Promise<void>;
}

const syncLease = ledgerLeases.currentSync;

export function currentLedger(table: LedgerTable): CurrentLedger {
  return {
    advanceCurrent(release) {
      const versionKey = versionSortKey(release.version);
      const item = {
        ...ledgerItems.current(release.channel, release.board),
        [ledgerKindAttribute]: 'current',
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

    async getCurrent(channel, board) {
      const item = await table.get('get current', ledgerItems.current(channel, board));
      return item === undefined ? undefined : strip<MirrorCurrent>(item);
    },

    async acquireCurrentSync(channel, board, holder, leaseSeconds) {
      const taken = await takeLease(
        table,
        'acquire current sync',
        ledgerItems.currentSync(channel, board),
        { ...syncLease, holder, seconds: leaseSeconds },
        {
          set: ['#kind = :kind'],
          names: { '#kind': ledgerKindAttribute },
          values: { ':kind': 'current-sync' },
        },
      );
      return taken !== undefined;
    },

    async releaseCurrentSync(channel, board, holder) {
      await endLease(table, 'release current sync', ledgerItems.currentSync(channel, board), {
        ...syncLease,
        holder,
      });
    },
  };
}
