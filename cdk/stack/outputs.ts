import { CfnOutput, type Stack } from 'aws-cdk-lib';
import type { MirrorDistribution } from '../constructs/mirror-distribution.ts';
import type { Api } from './api.ts';
import type { MirrorPipeline } from './mirror-pipeline.ts';
import type { Topics } from './notifications.ts';
import type { Storage } from './storage.ts';

export interface OutputParts {
  storage: Storage;
  topics: Topics;
  pipeline: MirrorPipeline;
  api: Api;
  dashboardName: string;
  distribution: MirrorDistribution | undefined;
}

/** What an operator (and the deploy tests) need after `cdk deploy`: names, URLs and where keys go. */
export function addStackOutputs(stack: Stack, parts: OutputParts): void {
  const { storage, topics, pipeline, api, distribution } = parts;
  const { mirrorBucket, configBucket, table } = storage;
  const { jobs, poller, worker } = pipeline;
  new CfnOutput(stack, 'ApiUrl', {
    value: api.publicUrl,
    description: 'Base URL of the instance config API',
  });
  new CfnOutput(stack, 'MirrorBucketName', { value: mirrorBucket.bucketName });
  new CfnOutput(stack, 'TrustKeyringUri', {
    value: `s3://${mirrorBucket.bucketName}/${pipeline.trustObjectKey}`,
    description: 'Upload rotated signing keys here (ASCII-armored public keys)',
  });
  new CfnOutput(stack, 'ConfigBucketName', { value: configBucket.bucketName });
  new CfnOutput(stack, 'EventsTopicArn', { value: topics.events.topic.topicArn });
  new CfnOutput(stack, 'OperatorTopicArn', { value: topics.operator.topic.topicArn });
  new CfnOutput(stack, 'JobsQueueArn', { value: jobs.queue.queueArn });
  new CfnOutput(stack, 'JobsDeadLetterQueueUrl', { value: jobs.deadLetterQueue.queueUrl });
  new CfnOutput(stack, 'JobsDeadLetterQueueArn', { value: jobs.deadLetterQueue.queueArn });
  new CfnOutput(stack, 'PollerFunctionName', { value: poller.functionName });
  new CfnOutput(stack, 'WorkerFunctionName', { value: worker.functionName });
  new CfnOutput(stack, 'ApiFunctionName', { value: api.fn.functionName });
  new CfnOutput(stack, 'WorkerLogGroupName', { value: worker.ownLogGroup.logGroupName });
  new CfnOutput(stack, 'PollerLogGroupName', { value: poller.ownLogGroup.logGroupName });
  new CfnOutput(stack, 'ApiLogGroupName', { value: api.fn.ownLogGroup.logGroupName });
  new CfnOutput(stack, 'LedgerTableName', { value: table.tableName });
  new CfnOutput(stack, 'DashboardUrl', {
    value: `https://${stack.region}.console.aws.amazon.com/cloudwatch/home?region=${stack.region}#dashboards:name=${parts.dashboardName}`,
  });
  if (distribution !== undefined) {
    new CfnOutput(stack, 'MirrorUrl', {
      value: `https://${distribution.distributionDomainName}`,
      description: 'The mirror over HTTPS: flatcar-install -b MirrorUrl/{channel}/{board}',
    });
  }
}
