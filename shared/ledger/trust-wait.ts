import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { artifactSk, conditionalWrite, k, openArtifacts, openSk, releasePk, strip, wrap } from './items.ts';
import type { ArtifactRecord, ArtifactRef, Ledger } from './ledger.ts';

/** The index partition of artifacts awaiting trust: the poller lists it when the trust changes. */
const awaitingTrustIndex = 'awaiting-trust';

type TrustWaitOperations = Pick<
  Ledger,
  'markAwaitingTrust' | 'listAwaitingTrust' | 'requeueArtifact' | 'claimTrustAlert' | 'releaseTrustAlert'
>;

/**
 * The ledger side of key rotation. An artifact refused for an unknown signer leaves the open-artifact index
 * (so the stalled sweep does not fetch it again and again under the same trust) for its own partition,
 * which the poller reads when the trust object changes.
 */
export function trustWaitOperations(
  doc: DynamoDBDocumentClient,
  tableName: string,
  clock: () => Date,
): TrustWaitOperations {
  const key = (ref: ArtifactRef) => ({
    [k.partitionKey]: releasePk(ref),
    [k.sortKey]: artifactSk(ref.artifact),
  });

  return {
    markAwaitingTrust(ref, wait) {
      const updatedAt = clock().toISOString();
      return conditionalWrite('mark awaiting trust', () =>
        doc.send(
          new UpdateCommand({
            TableName: tableName,
            Key: key(ref),
            UpdateExpression:
              'SET #state = :awaiting, updatedAt = :now, lastError = :detail, awaitingIssuer = :issuer, trustVersion = :tv, #g1pk = :index, #g1sk = :g1sk REMOVE leaseUntil, alertedAt, alertLeaseUntil',
            ConditionExpression: '#state IN (:pending, :missing)',
            ExpressionAttributeNames: {
              '#state': 'state',
              '#g1pk': k.gsi1PartitionKey,
              '#g1sk': k.gsi1SortKey,
            },
            ExpressionAttributeValues: {
              ':awaiting': 'awaiting_trust',
              ':pending': 'pending',
              ':missing': 'missing',
              ':now': updatedAt,
              ':detail': wait.detail.slice(0, 1000),
              ':issuer': wait.issuer,
              ':tv': wait.trustVersion,
              ':index': awaitingTrustIndex,
              ':g1sk': openSk(updatedAt, ref),
            },
          }),
        ),
      );
    },

    async listAwaitingTrust(limit) {
      const items: Record<string, unknown>[] = [];
      let startKey: Record<string, unknown> | undefined;
      do {
        try {
          const page = await doc.send(
            new QueryCommand({
              TableName: tableName,
              IndexName: k.gsi1Name,
              KeyConditionExpression: '#g1pk = :index',
              ExpressionAttributeNames: { '#g1pk': k.gsi1PartitionKey },
              ExpressionAttributeValues: { ':index': awaitingTrustIndex },
              ExclusiveStartKey: startKey,
            }),
          );
          items.push(...(page.Items ?? []));
          startKey = page.LastEvaluatedKey;
        } catch (error) {
          return wrap('list awaiting trust', error);
        }
      } while (startKey !== undefined && items.length < limit);
      return items
        .slice(0, limit)
        .map((item) => strip<ArtifactRecord>(item))
        .filter((record) => record.state === 'awaiting_trust');
    },

    requeueArtifact(ref, from) {
      const updatedAt = clock().toISOString();
      const names = from.map((_, index) => `:from${index}`);
      const values = Object.fromEntries(from.map((state, index) => [`:from${index}`, state]));
      return conditionalWrite('requeue artifact', () =>
        doc.send(
          new UpdateCommand({
            TableName: tableName,
            Key: key(ref),
            UpdateExpression:
              'SET #state = :pending, updatedAt = :now, #g1pk = :open, #g1sk = :g1sk REMOVE leaseUntil, alertedAt, alertLeaseUntil, awaitingIssuer',
            ConditionExpression: `#state IN (${names.join(', ')})`,
            ExpressionAttributeNames: {
              '#state': 'state',
              '#g1pk': k.gsi1PartitionKey,
              '#g1sk': k.gsi1SortKey,
            },
            ExpressionAttributeValues: {
              ...values,
              ':pending': 'pending',
              ':now': updatedAt,
              ':open': openArtifacts,
              ':g1sk': openSk(updatedAt, ref),
            },
          }),
        ),
      );
    },

    claimTrustAlert(issuer, trustVersion) {
      return conditionalWrite('claim trust alert', () =>
        doc.send(
          new PutCommand({
            TableName: tableName,
            Item: {
              [k.partitionKey]: `trustalert#${issuer}`,
              [k.sortKey]: trustVersion,
              kind: 'trust-alert',
              issuer,
              trustVersion,
              at: clock().toISOString(),
            },
            ConditionExpression: 'attribute_not_exists(#pk)',
            ExpressionAttributeNames: { '#pk': k.partitionKey },
          }),
        ),
      );
    },

    async releaseTrustAlert(issuer, trustVersion) {
      try {
        await doc.send(
          new DeleteCommand({
            TableName: tableName,
            Key: { [k.partitionKey]: `trustalert#${issuer}`, [k.sortKey]: trustVersion },
          }),
        );
      } catch (error) {
        wrap('release trust alert', error);
      }
    },
  };
}
