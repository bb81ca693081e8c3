import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';

/**
 * The single-table layout of the ledger, shared by the CDK stack, the local runner and the tests so that
 * they cannot disagree. `pk`/`sk` are strings; `gsi1` indexes open work (stalled releases, audit by time).
 */
export const ledgerKeySchema = {
  partitionKey: 'pk',
  sortKey: 'sk',
  gsi1Name: 'gsi1',
  gsi1PartitionKey: 'gsi1pk',
  gsi1SortKey: 'gsi1sk',
} as const;

/** Items with this attribute (epoch seconds) expire: DynamoDB's TTL on AWS, a sweep on one machine. */
export const ledgerTtlAttribute = 'ttl';

export function ledgerTableInput(tableName: string): CreateTableCommandInput {
  const k = ledgerKeySchema;
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      { AttributeName: k.partitionKey, AttributeType: 'S' },
      { AttributeName: k.sortKey, AttributeType: 'S' },
      { AttributeName: k.gsi1PartitionKey, AttributeType: 'S' },
      { AttributeName: k.gsi1SortKey, AttributeType: 'S' },
    ],
    KeySchema: [
      { AttributeName: k.partitionKey, KeyType: 'HASH' },
      { AttributeName: k.sortKey, KeyType: 'RANGE' },
    ],
    GlobalSecondaryIndexes: [
      {
        IndexName: k.gsi1Name,
        KeySchema: [
          { AttributeName: k.gsi1PartitionKey, KeyType: 'HASH' },
          { AttributeName: k.gsi1SortKey, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
    ],
  };
}
