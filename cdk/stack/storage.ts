import { RemovalPolicy, type Stack } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as kms from 'aws-cdk-lib/aws-kms';
import { ledgerKeySchema, ledgerTtlAttribute } from '../../shared/ledger/table.ts';
import { PrivateBucket } from '../constructs/private-bucket.ts';
import type { DeploySettings } from '../settings.ts';

export interface Storage {
  mirrorBucket: PrivateBucket;
  configKey: kms.Key;
  configBucket: PrivateBucket;
  table: dynamodb.Table;
}

/**
 * The stack's state: the public mirror bucket, the config bucket under its own customer key (instance
 * configs may hold secrets), and the one ledger table every function shares, under the same key. All of it is retained when
 * the stack goes, because none of it can be rebuilt from the code.
 */
export function buildStorage(stack: Stack, deploy: DeploySettings): Storage {
  const accessLogsBucket = deploy.mirror.accessLogs
    ? new PrivateBucket(stack, 'AccessLogsBucket', { logDestination: true })
    : undefined;

  const mirrorBucket = new PrivateBucket(stack, 'MirrorBucket', {
    accessLogs: accessLogsBucket && { bucket: accessLogsBucket, prefix: 'mirror/' },
  });
  const configKey = new kms.Key(stack, 'ConfigKey', {
    description: 'cldist instance configs (SSE-KMS on the config bucket, SSE on the ledger table)',
    enableKeyRotation: true,
    removalPolicy: RemovalPolicy.RETAIN,
  });
  const configBucket = new PrivateBucket(stack, 'ConfigBucket', {
    encryptionKey: configKey,
    accessLogs: accessLogsBucket && { bucket: accessLogsBucket, prefix: 'config/' },
  });
  return { mirrorBucket, configKey, configBucket, table: ledgerTable(stack, configKey) };
}

/**
 * Small instance configs live in their ledger items, so the table is encrypted at rest with the config
 * bucket's customer-managed key: the operator holds one key, whose policy and CloudTrail record cover
 * every config wherever it is stored, and disabling it shuts both.
 */
function ledgerTable(stack: Stack, configKey: kms.IKey): dynamodb.Table {
  const table = new dynamodb.Table(stack, 'Ledger', {
    partitionKey: { name: ledgerKeySchema.partitionKey, type: dynamodb.AttributeType.STRING },
    // Fetch audit items carry their expiry (api.auditRetentionDays after the newest entry).
    timeToLiveAttribute: ledgerTtlAttribute,
    sortKey: { name: ledgerKeySchema.sortKey, type: dynamodb.AttributeType.STRING },
    billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
    encryptionKey: configKey,
    deletionProtection: true,
    removalPolicy: RemovalPolicy.RETAIN,
  });
  table.addGlobalSecondaryIndex({
    indexName: ledgerKeySchema.gsi1Name,
    partitionKey: { name: ledgerKeySchema.gsi1PartitionKey, type: dynamodb.AttributeType.STRING },
    sortKey: { name: ledgerKeySchema.gsi1SortKey, type: dynamodb.AttributeType.STRING },
    projectionType: dynamodb.ProjectionType.ALL,
  });
  return table;
}
