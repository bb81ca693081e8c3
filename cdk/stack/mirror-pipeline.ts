import { Duration, type Stack } from 'aws-cdk-lib';
import * as eventbridge from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type { CldistConfig } from '../../shared/config.ts';
import type { S3StoreConfig } from '../../shared/mirror/store-location.ts';
import type { DeployedResources } from '../../shared/runtime-env.ts';
import { serviceNames } from '../../shared/telemetry-names.ts';
import type { EncryptedTopic } from '../constructs/encrypted-topic.ts';
import { type BundledFile, CldistFunction } from '../constructs/node-function.ts';
import { WorkerQueue } from '../constructs/worker-queue.ts';
import { grantLedger, grantObjects, grantPublish } from '../grants.ts';
import { acknowledgeObjectWildcard } from '../nag.ts';
import type { DeploySettings } from '../settings.ts';
import type { WorkerSize } from '../worker-sizing.ts';
import type { Storage } from './storage.ts';

export interface MirrorPipelineProps {
  /** The config the functions run with: the deployed store and the bundled keyring paths. */
  config: CldistConfig;
  deploy: DeploySettings;
  storage: Storage;
  events: EncryptedTopic;
  mirrorStore: S3StoreConfig;
  /** The keyring files and the update payload keys, copied into the poller and the worker. */
  keyringFiles: BundledFile[];
  workerSize: WorkerSize;
  logRetention: logs.RetentionDays;
  projectRoot: string;
  pollerEntry: string;
  workerEntry: string;
}

export interface MirrorPipeline {
  jobs: WorkerQueue;
  poller: CldistFunction;
  worker: CldistFunction;
  /** The S3 key operators upload rotated signing keys to. */
  trustObjectKey: string;
}

/** The mirror on AWS: schedule → poller → queue → worker → mirror bucket, with least-privilege grants. */
export function buildMirrorPipeline(stack: Stack, props: MirrorPipelineProps): MirrorPipeline {
  const { config, deploy, storage, events, mirrorStore } = props;
  const trustKeyringKey = deploy.mirror.trustKeyringKey;
  const trustObjectKey = `${mirrorStore.prefix}${trustKeyringKey}`;

  const jobs = new WorkerQueue(stack, 'Jobs', {
    consumerTimeout: Duration.seconds(props.workerSize.timeoutSeconds),
    maxReceiveCount: config.queue.retry.maxReceives,
  });

  const resources: DeployedResources = {
    tableName: storage.table.tableName,
    topicArn: events.topic.topicArn,
    mirrorBucket: storage.mirrorBucket.bucketName,
    trustKeyringKey,
    jobsQueueUrl: jobs.queue.queueUrl,
  };
  const { poller, worker } = mirrorFunctions(stack, props, resources);

  worker.addEventSource(
    new SqsEventSource(jobs.queue, {
      batchSize: 1,
      reportBatchItemFailures: true,
      maxConcurrency: deploy.worker.maxConcurrency,
    }),
  );
  schedulePolls(stack, config, poller);

  grantLedger(poller, storage.table, { key: storage.configKey, instances: false });
  jobs.queue.grantSendMessages(poller);
  grantPublish(poller, events.topic, events.key);
  grantObjects(poller, storage.mirrorBucket, ['s3:GetObject'], trustObjectKey);
  // Retention: the poll run finishes prunes left half-done and applies keepReleases, deleting old releases.
  grantObjects(poller, storage.mirrorBucket, ['s3:DeleteObject'], `${mirrorStore.prefix}*`);
  acknowledgeObjectWildcard(
    poller.role ?? poller,
    storage.mirrorBucket,
    'Retention deletes {channel}/{board}/{version}/{file} of releases older than keepReleases, not known at deploy time. The poller may only delete (no get, put or ACLs), and only under the mirror prefix.',
    `${mirrorStore.prefix}*`,
  );

  grantLedger(worker, storage.table, { key: storage.configKey, instances: false });
  grantObjects(
    worker,
    storage.mirrorBucket,
    ['s3:GetObject', 's3:PutObject', 's3:AbortMultipartUpload', 's3:DeleteObject'],
    `${mirrorStore.prefix}*`,
  );
  grantPublish(worker, events.topic, events.key);
  acknowledgeObjectWildcard(
    worker.role ?? worker,
    storage.mirrorBucket,
    'The worker writes {channel}/{board}/{version}/{file} for releases not known at deploy time. It may get, put, abort uploads and delete (finalize removes an artifact whose SHA-512 contradicts the signed DIGESTS), no ACLs, and only under the mirror prefix.',
    `${mirrorStore.prefix}*`,
  );
  return { jobs, poller, worker, trustObjectKey };
}

function mirrorFunctions(
  stack: Stack,
  props: MirrorPipelineProps,
  resources: DeployedResources,
): { poller: CldistFunction; worker: CldistFunction } {
  const { config, deploy, workerSize } = props;
  // What the two functions share: both assemble the one mirror runtime from the same config and resources.
  const shared = {
    projectRoot: props.projectRoot,
    config,
    resources,
    logRetentionDays: props.logRetention,
    files: props.keyringFiles,
  };
  const poller = new CldistFunction(stack, 'Poller', {
    ...shared,
    entry: props.pollerEntry,
    description: 'cldist poller: reads each channel current/version.txt and enqueues new releases',
    serviceName: serviceNames.poller,
    memorySize: 512,
    timeout: Duration.minutes(5),
  });
  const worker = new CldistFunction(stack, 'Worker', {
    ...shared,
    entry: props.workerEntry,
    description: `cldist mirror worker: verifies and stores one artifact (sized for ${config.limits.maxArtifactBytes} bytes at ${deploy.worker.minThroughputMBps} MB/s)`,
    serviceName: serviceNames.worker,
    memorySize: workerSize.memoryMiB,
    timeout: Duration.seconds(workerSize.timeoutSeconds),
    ephemeralStorageMiB: workerSize.ephemeralStorageMiB,
  });
  return { poller, worker };
}

/** A missed poll is not retried: the next one, `everyMinutes` later, does the same work. */
function schedulePolls(stack: Stack, config: CldistConfig, poller: CldistFunction): void {
  const scheduleRule = new eventbridge.Rule(stack, 'PollSchedule', {
    description: `cldist: poll the release servers every ${config.schedule.everyMinutes} minutes`,
    schedule: eventbridge.Schedule.rate(Duration.minutes(config.schedule.everyMinutes)),
  });
  scheduleRule.addTarget(
    new targets.LambdaFunction(poller, {
      retryAttempts: 0,
      maxEventAge: Duration.minutes(Math.max(1, config.schedule.everyMinutes)),
    }),
  );
  poller.configureAsyncInvoke({ retryAttempts: 0 });
}
