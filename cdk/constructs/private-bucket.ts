import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { acknowledge } from '../nag.ts';

export interface PrivateBucketProps {
  /**
   * A customer-managed key for SSE-KMS; without it objects use SSE-S3 (what CloudFront OAC reads simply).
   * @default SSE-S3
   */
  encryptionKey?: kms.IKey;
  /**
   * Where server access logs go; `undefined` leaves them off (an explicit, documented choice).
   * @default no server access logs
   */
  accessLogs?: { bucket: s3.IBucket; prefix: string };
  /**
   * This bucket receives other buckets' server access logs (and so keeps none of its own).
   * @default false
   */
  logDestination?: boolean;
}

/**
 * The only kind of bucket this app makes: no public access at all, bucket-owner-enforced ownership (no
 * ACLs), TLS 1.2+ only, encrypted, retained when the stack is deleted, and with unfinished multipart
 * uploads aborted after a day. The worker aborts its own on a bad signature; the rule catches the ones a
 * crashed or timed-out invocation leaves behind, which would otherwise be billed forever and never seen.
 */
export class PrivateBucket extends s3.Bucket {
  constructor(scope: Construct, id: string, props: PrivateBucketProps = {}) {
    super(scope, id, {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      encryption:
        props.encryptionKey === undefined ? s3.BucketEncryption.S3_MANAGED : s3.BucketEncryption.KMS,
      encryptionKey: props.encryptionKey,
      bucketKeyEnabled: props.encryptionKey !== undefined,
      removalPolicy: RemovalPolicy.RETAIN,
      serverAccessLogsBucket: props.accessLogs?.bucket,
      serverAccessLogsPrefix: props.accessLogs?.prefix,
      lifecycleRules: [
        { id: 'abort-incomplete-multipart-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
    });
    if (props.logDestination === true) {
      acknowledge(
        this,
        'AwsSolutions-S1',
        'This bucket receives the server access logs of the other buckets; logging it into itself would loop.',
      );
    } else if (props.accessLogs === undefined) {
      acknowledge(
        this,
        'AwsSolutions-S1',
        'Server access logs are opt-in (cldist:deploy.mirror.accessLogs): every request becomes a log object billed ' +
          'to the operator; turn the switch on, or use CloudTrail data events, when request-level auditing is wanted.',
      );
    }
  }
}
