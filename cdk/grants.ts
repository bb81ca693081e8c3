import { Stack } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { ledgerKeySchema } from '../shared/ledger/table.ts';

/**
 * Item-level ledger access. The CDK's `grantReadWriteData` would also grant `Scan` and every index
 * (`index/*`); the ledger needs neither: it reads by key, queries its one index, and relies on
 * conditional writes and transactions (which IAM checks per underlying action).
 */
export const ledgerActions = [
  'dynamodb:GetItem',
  'dynamodb:BatchGetItem',
  'dynamodb:Query',
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:DeleteItem',
  'dynamodb:BatchWriteItem',
  'dynamodb:ConditionCheckItem',
  'dynamodb:DescribeTable',
];

function addStatement(grantee: iam.IGrantable, statement: iam.PolicyStatement): void {
  iam.Grant.addToPrincipal({ grantee, actions: statement.actions, resourceArns: statement.resources });
}

/** What DynamoDB asks KMS for, on the caller's behalf, to read and write a table under a customer key. */
export const ledgerKeyActions = ['kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey'];

/**
 * The partitions of instance items (records with their inline config bodies, audit, boot selections) and
 * of their index entries. A function that has no business with instances is kept out of them.
 */
export const instancePartitionPatterns = ['instance#*', 'instance-*'];

/**
 * Item-level access to the ledger, and use of its table key through DynamoDB only (`kms:ViaService`), so
 * the key opens nothing else for the grantee. Without `instances`, the grant excludes instance partitions
 * (`dynamodb:LeadingKeys`): small configs are stored in them, and only the API function may read configs.
 */
export function grantLedger(
  grantee: iam.IGrantable,
  table: dynamodb.ITable,
  options: { key: kms.IKey; instances: boolean },
): void {
  grantee.grantPrincipal.addToPrincipalPolicy(
    new iam.PolicyStatement({
      actions: ledgerActions,
      resources: [table.tableArn, `${table.tableArn}/index/${ledgerKeySchema.gsi1Name}`],
      ...(options.instances
        ? {}
        : {
            conditions: {
              'ForAllValues:StringNotLike': { 'dynamodb:LeadingKeys': instancePartitionPatterns },
            },
          }),
    }),
  );
  grantee.grantPrincipal.addToPrincipalPolicy(
    new iam.PolicyStatement({
      actions: ledgerKeyActions,
      resources: [options.key.keyArn],
      conditions: { StringEquals: { 'kms:ViaService': `dynamodb.${Stack.of(table).region}.amazonaws.com` } },
    }),
  );
}

/** SSE on a topic means a publisher also needs the topic key, for exactly these two actions. */
export function grantPublish(grantee: iam.IGrantable, topic: sns.ITopic, key: kms.IKey): void {
  addStatement(grantee, new iam.PolicyStatement({ actions: ['sns:Publish'], resources: [topic.topicArn] }));
  addStatement(
    grantee,
    new iam.PolicyStatement({ actions: ['kms:GenerateDataKey', 'kms:Decrypt'], resources: [key.keyArn] }),
  );
}

/**
 * Object access by exact action. `s3:ListBucket` comes along, unconditioned, because without it S3
 * answers 403 instead of 404 for a missing key, and "not there yet" (the trust keyring before the first
 * rotation) must be told apart from "not allowed". A `s3:prefix` condition would not help: the 404 check
 * is made without a prefix in the request context.
 */
export function grantObjects(
  grantee: iam.IGrantable,
  bucket: s3.IBucket,
  actions: string[],
  keyPattern = '*',
): void {
  addStatement(grantee, new iam.PolicyStatement({ actions, resources: [bucket.arnForObjects(keyPattern)] }));
  addStatement(
    grantee,
    new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [bucket.bucketArn] }),
  );
}

/** SSE-KMS with a bucket key: S3 asks KMS for a data key on write and a decrypt on read, nothing else. */
export function grantBucketKey(grantee: iam.IGrantable, key: kms.IKey): void {
  addStatement(
    grantee,
    new iam.PolicyStatement({ actions: ['kms:GenerateDataKey', 'kms:Decrypt'], resources: [key.keyArn] }),
  );
}
