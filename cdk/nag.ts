import { CfnElement, Stack, Validations } from 'aws-cdk-lib';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { IConstruct } from 'constructs';

/**
 * Every acknowledged cdk-nag finding goes through here so that none is ever made without a reason a
 * reviewer can judge; a reason shorter than a sentence is refused at synth time.
 */
export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  if (reason.trim().length < 40) {
    throw new Error(`acknowledging ${id} on ${scope.node.path} needs a real reason, got "${reason}"`);
  }
  Validations.of(scope).acknowledge({ id, reason });
}

/**
 * IAM5 findings name resources by logical ID (`Resource::<MirrorBucket7E85C27F.Arn>/*`); this derives
 * the ID from the bucket itself, so renaming a construct cannot silently orphan an acknowledgement.
 */
export function acknowledgeObjectWildcard(
  scope: IConstruct,
  bucket: s3.IBucket,
  reason: string,
  keyPattern = '*',
): void {
  const cfn = bucket.node.defaultChild;
  if (!(cfn instanceof CfnElement)) {
    throw new Error(`bucket ${bucket.node.path} has no CloudFormation resource to name`);
  }
  acknowledge(
    scope,
    `AwsSolutions-IAM5[Resource::<${Stack.of(cfn).getLogicalId(cfn)}.Arn>/${keyPattern}]`,
    reason,
  );
}
