import { type LedgerTable, strip } from './access.ts';
import { endLease, takeLease } from './lease.ts';
import type { AlertState, ArtifactRef, ReleaseRecord, ReleaseRef } from './records.ts';
import {
  ledgerKeySchema as k,
  ledgerIndex,
  ledgerItems,
  ledgerKindAttribute,
  ledgerLeases,
} from './table.ts';

/**
 * What the mirror tells the world, each at least once and deduplicated here: an artifact's terminal state,
 * a signing key close to expiry (once a day), and a release's `release.mirrored` announcement.
 */
export interface AlertLedger {
  /**
   * Takes the right to publish the alert for `state` for a short while, so two deliveries of one job do not
   * both publish; false if it was recorded already, is held by another caller, or the state is another.
   */
  claimAlert(ref: ArtifactRef, state: AlertState, leaseSeconds: number): Promise<boolean>;
  /** Gives the alert back after a failed publish, so the retry need not wait for the claim to run out. */
  releaseAlert(ref: ArtifactRef): Promise<void>;
  /**
   * Records that the alert for `state` went out; true for the one caller whose write made it. Called after
   * publishing, so a crash in between repeats the alert rather than losing it.
   */
  recordAlert(ref: ArtifactRef, state: AlertState): Promise<boolean>;
  /** True for the first caller of the day per key: the expiry warning goes out once a day. */
  recordKeyWarning(fingerprint: string, day: string): Promise<boolean>;
  /** Records that `release.mirrored` went out and gives the finalize lease back. */
  recordAnnounced(release: ReleaseRef): Promise<boolean>;
  /**
   * Releases claimed in [`since`, `before`) whose `release.mirrored` has not gone out: the poller's sweep
   * retries their finalize, so a finalizer that died with the lease held (or whose abandon failed) strands
   * nothing.
   */
  listUnannounced(since: Date, before: Date, limit: number): Promise<ReleaseRef[]>;
}

const alertLease = ledgerLeases.alert;
const finalizeLease = ledgerLeases.finalize;
const stateName = { '#state': 'state' } as const;
/** The artifact is still in the state the alert is about, and the alert has not gone out. */
const alertOwed = '#state = :state AND attribute_not_exists(alertedAt)';

export function alertLedger(table: LedgerTable): AlertLedger {
  const nowIso = () => table.clock().toISOString();
  return {
    claimAlert: async (ref, state, leaseSeconds) => {
      const taken = await takeLease(
        table,
        'claim alert',
        ledgerItems.artifact(ref),
        { ...alertLease, seconds: leaseSeconds },
        { condition: alertOwed, names: stateName, values: { ':state': state } },
      );
      return taken !== undefined;
    },
    releaseAlert: async (ref) => {
      await endLease(table, 'release alert', ledgerItems.artifact(ref), alertLease, {
        condition: 'attribute_not_exists(alertedAt)',
      });
    },
    recordAlert: (ref, state) =>
      endLease(table, 'record alert', ledgerItems.artifact(ref), alertLease, {
        set: ['alertedAt = :now'],
        condition: alertOwed,
        names: stateName,
        values: { ':now': nowIso(), ':state': state },
      }),
    recordKeyWarning: (fingerprint, day) =>
      table.put(
        'record key warning',
        {
          ...ledgerItems.keyWarning(fingerprint, day),
          [ledgerKindAttribute]: 'key-warning',
          fingerprint,
          day,
          at: nowIso(),
        },
        { condition: 'attribute_not_exists(#pk)', names: { '#pk': k.partitionKey } },
      ),
    recordAnnounced: (release) =>
      endLease(table, 'record announced', ledgerItems.release(release), finalizeLease, {
        set: ['announcedAt = :now'],
        remove: ['announcePending'],
        condition: 'attribute_exists(finalizedAt) AND attribute_not_exists(announcedAt)',
        values: { ':now': nowIso() },
      }),
    listUnannounced: (since, before, limit) => listUnannounced(table, since, before, limit),
  };
}

async function listUnannounced(
  table: LedgerTable,
  since: Date,
  before: Date,
  limit: number,
): Promise<ReleaseRef[]> {
  const items = await table.query(
    'list unannounced',
    {
      IndexName: k.gsi1Name,
      KeyConditionExpression: '#g1pk = :r',
      FilterExpression: 'attribute_not_exists(announcedAt) AND claimedAt >= :since AND claimedAt < :before',
      ExpressionAttributeNames: { '#g1pk': k.gsi1PartitionKey },
      ExpressionAttributeValues: {
        ':r': ledgerIndex.releases,
        ':since': since.toISOString(),
        ':before': before.toISOString(),
      },
    },
    limit,
  );
  return items.map((item) => {
    const { source, channel, board, version } = strip<ReleaseRecord>(item);
    return { source, channel, board, version };
  });
}
