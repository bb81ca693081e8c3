import { join } from 'node:path';
import { Duration, Stack, type StackProps } from 'aws-cdk-lib';
import * as eventbridge from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type { Construct } from 'constructs';
import type { CldistConfig } from '../shared/config.ts';
import { configBodySweepEvent } from '../shared/instances/body-sweep.ts';
import { deployedMirrorStore } from '../shared/mirror/store-location.ts';
import { CldistMonitoring } from './constructs/cldist-monitoring.ts';
import { MirrorDistribution } from './constructs/mirror-distribution.ts';
import type { DeploySettings } from './settings.ts';
import { buildApi } from './stack/api.ts';
import { bundledKeyring, bundledUpdateKeys, retention } from './stack/deploy-inputs.ts';
import { buildMirrorPipeline } from './stack/mirror-pipeline.ts';
import { buildTopics } from './stack/notifications.ts';
import { addStackOutputs } from './stack/outputs.ts';
import { buildStorage } from './stack/storage.ts';
import { sizeWorker, type WorkerSize } from './worker-sizing.ts';

export interface CldistStackProps extends StackProps {
  config: CldistConfig;
  deploy: DeploySettings;
  /** Directory holding package-lock.json, `functions/` and `keys/`. */
  projectRoot: string;
  /** Handler modules, by default `functions/{poller,mirror-worker,api}/handler.ts` under projectRoot. */
  entries?: Partial<Record<'poller' | 'worker' | 'api', string>>;
}

/**
 * The whole AWS deployment in one stack: the mirror pipeline (schedule → poller → queue → worker →
 * bucket), the instance config API, notifications, alarms and a dashboard. One stack because every
 * part shares the ledger table and nothing is deployed on its own. Each part is built by its module in
 * `stack/` directly in this stack's scope, so the logical ids stay those of the resources themselves.
 */
export class CldistStack extends Stack {
  readonly workerSize: WorkerSize;

  constructor(scope: Construct, id: string, props: CldistStackProps) {
    super(scope, id, props);
    const { config, deploy, projectRoot } = props;
    const entry = (name: 'poller' | 'worker' | 'api', folder: string) =>
      props.entries?.[name] ?? join(projectRoot, 'functions', folder, 'handler.ts');
    const logRetention = retention(deploy.logRetentionDays);
    this.workerSize = sizeWorker(config, deploy.worker.minThroughputMBps);

    const storage = buildStorage(this, deploy);
    const topics = buildTopics(this, deploy);

    const keyring = bundledKeyring(config);
    const updateKeys = bundledUpdateKeys(config);
    const mirrorStore = deployedMirrorStore(config, storage.mirrorBucket.bucketName);
    const deployedConfig: CldistConfig = {
      ...config,
      store: mirrorStore,
      keyring: { ...config.keyring, files: keyring.paths },
      ...(config.update === undefined ? {} : { update: { ...config.update, payloadKeys: updateKeys.paths } }),
    };
    const pipeline = buildMirrorPipeline(this, {
      config: deployedConfig,
      deploy,
      storage,
      events: topics.events,
      mirrorStore,
      keyringFiles: [...keyring.files, ...updateKeys.files],
      workerSize: this.workerSize,
      logRetention,
      projectRoot,
      pollerEntry: entry('poller', 'poller'),
      workerEntry: entry('worker', 'mirror-worker'),
    });

    const distribution = deploy.mirror.cloudFront
      ? new MirrorDistribution(this, 'MirrorDistribution', {
          bucket: storage.mirrorBucket,
          prefix: mirrorStore.prefix,
        })
      : undefined;

    const api = buildApi(this, {
      config: deployedConfig,
      deploy,
      storage,
      logRetention,
      entry: entry('api', 'api'),
      projectRoot,
      jobs: pipeline.jobs.queue,
      ...(distribution === undefined
        ? {}
        : { mirrorPublicUrl: `https://${distribution.distributionDomainName}` }),
    });
    // Config bodies no record points at (replaced, or written by a PUT that lost a race) are collected
    // here, never in the racing PUT: the API function itself, with a constant input it recognises.
    new eventbridge.Rule(this, 'ConfigBodySweep', {
      description: 'cldist: remove instance config bodies that no instance record points at',
      schedule: eventbridge.Schedule.rate(Duration.days(1)),
    }).addTarget(
      new targets.LambdaFunction(api.fn, {
        event: eventbridge.RuleTargetInput.fromObject(configBodySweepEvent),
        retryAttempts: 0,
      }),
    );

    const monitoring = new CldistMonitoring(this, 'Monitoring', {
      alarmTopic: topics.operator.topic,
      jobs: pipeline.jobs,
      poller: pipeline.poller,
      worker: pipeline.worker,
      apiFunction: api.fn,
      httpApi: api.httpApi,
      apiStage: api.stage.stageName,
      table: storage.table,
      pollEvery: Duration.minutes(config.schedule.everyMinutes),
      api5xxPerFiveMinutes: deploy.alarms.api5xxPerFiveMinutes,
    });

    addStackOutputs(this, {
      storage,
      topics,
      pipeline,
      api,
      dashboardName: monitoring.dashboard.dashboardName,
      distribution,
    });
  }
}
