import { RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';

export interface EncryptedTopicProps {
  description: string;
  /**
   * AWS services that publish to the topic themselves (e.g. CloudWatch alarms). An encrypted topic is
   * silently unusable for them unless the key policy lets them encrypt with the key.
   * @default none: no service principal may use the key
   */
  publishingServices?: string[];
}

/**
 * An SNS topic encrypted with its own customer-managed key (rotated yearly) and refusing publishes over
 * plain HTTP. A customer-managed key rather than `alias/aws/sns`, because AWS services such as
 * CloudWatch cannot be granted use of the AWS-managed key and alarms would fail to notify.
 */
export class EncryptedTopic extends Construct {
  readonly topic: sns.Topic;
  readonly key: kms.Key;

  constructor(scope: Construct, id: string, props: EncryptedTopicProps) {
    super(scope, id);
    this.key = new kms.Key(this, 'Key', {
      description: `${props.description} (SNS encryption)`,
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    for (const service of props.publishingServices ?? []) {
      this.key.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: `AllowPublishFrom${service.split('.')[0]}`,
          principals: [new iam.ServicePrincipal(service)],
          actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
          resources: ['*'],
        }),
      );
    }
    this.topic = new sns.Topic(this, 'Topic', {
      displayName: props.description,
      masterKey: this.key,
      enforceSSL: true,
    });
  }
}
