import { type LedgerTable, strip } from './access.ts';
import { openSortKey } from './artifacts.ts';
import { errorTextLimit, leasesEndedByVerdict } from './attempts.ts';
import type { ArtifactRecord, ArtifactRef, AwaitingTrust } from './records.ts';
import { ledgerKeySchema as k, ledgerIndex, ledgerItems, ledgerKindAttribute } from './table.ts';

/**
 * The ledger side of key rotation. An artifact refused for an unknown signer leaves the open-artifact index
 * (so the stalled sweep does not fetch it again and again under the same trust) for its own partition,
 * which the poller reads when the trust object changes; the alert about the signer goes out once per
 * signer and trust version.
 */
export interface TrustWaitLedger {
  /** Parks an artifact being attempted until the trust changes; false if it was not pending or missing. */
  markAwaitingTrust(ref: ArtifactRef, wait: AwaitingTrust): Promise<boolean>;
  listAwaitingTrust(limit: number): Promise<ArtifactRecord[]>;
  /** True for the first caller per signer and trust version: the awaiting-trust alert goes out once. */
  claimTrustAlert(issuer: string, trustVersion: string): Promise<boolean>;
  /** Gives the claim back after a failed publish, so the redelivered job publishes. */
  releaseTrustAlert(issuer: string, trustVersion: string): Promise<void>;
}

export function trustWaitLedger(table: LedgerTable): TrustWaitLedger {
  const nowIso = () => table.clock().toISOString();

  return {
    markAwaitingTrust(ref, wait) {
      const updatedAt = nowIso();
      return table.update('mark awaiting trust', ledgerItems.artifact(ref), {
        set: [
          '#state = :awaiting',
          'updatedAt = :now',
          'lastError = :detail',
          'awaitingIssuer = :issuer',
          'trustVersion = :tv',
          '#g1pk = :index',
          '#g1sk = :g1sk',
        ],
        remove: leasesEndedByVerdict,
        condition: '#state IN (:pending, :missing)',
        names: { '#state': 'state', '#g1pk': k.gsi1PartitionKey, '#g1sk': k.gsi1SortKey },
        values: {
          ':awaiting': 'awaiting_trust',
          ':pending': 'pending',
          ':missing': 'missing',
          ':now': updatedAt,
          ':detail': wait.detail.slice(0, errorTextLimit),
          ':issuer': wait.issuer,
          ':tv': wait.trustVersion,
          ':index': ledgerIndex.awaitingTrust,
          ':g1sk': openSortKey(updatedAt, ref),
        },
      });
    },

    async listAwaitingTrust(limit) {
      const items = await table.query(
        'list awaiting trust',
        {
          IndexName: k.gsi1Name,
          KeyConditionExpression: '#g1pk = :index',
          ExpressionAttributeNames: { '#g1pk': k.gsi1PartitionKey },
          ExpressionAttributeValues: { ':index': ledgerIndex.awaitingTrust },
        },
        limit,
      );
      return items
        .map((item) => strip<ArtifactRecord>(item))
        .filter((record) => record.state === 'awaiting_trust');
    },

    claimTrustAlert(issuer, trustVersion) {
      const item = {
        ...ledgerItems.trustAlert(issuer, trustVersion),
        [ledgerKindAttribute]: 'trust-alert',
        issuer,
        trustVersion,
        at: nowIso(),
      };
      return table.put('claim trust alert', item, {
        condition: 'attribute_not_exists(#pk)',
        names: { '#pk': k.partitionKey },
      });
    },

    async releaseTrustAlert(issuer, trustVersion) {
      await table.delete('release trust alert', ledgerItems.trustAlert(issuer, trustVersion));
    },
  };
}
