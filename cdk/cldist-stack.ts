import { basename, join } from 'node:path';
import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as eventbridge from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as kms from 'aws-cdk-lib/aws-kms';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { type ApiRoute, apiRoutes, instanceRouteKeys, metadataRouteKeys } from '../shared/api-routes.ts';
import { type CldistConfig, resolveProjectPath } from '../shared/config.ts';
import { ConfigError } from '../shared/errors.ts';
import { configBodySweepEvent } from '../shared/instances/body-sweep.ts';
import { ledgerKeySchema, ledgerTtlAttribute } from '../shared/ledger/table.ts';
import { deployedMirrorStore } from '../shared/mirror/store-location.ts';
import { serviceNames } from '../shared/telemetry-names.ts';
import { CldistMonitoring } from './constructs/cldist-monitoring.ts';
import { EncryptedTopic } from './constructs/encrypted-topic.ts';
import { MirrorDistribution } from './constructs/mirror-distribution.ts';
import { type BundledFile, CldistFunction } from './constructs/node-function.ts';
import { PrivateBucket } from './constructs/private-bucket.ts';
import { MetadataProxySecret } from './constructs/proxy-secret.ts';
import { WorkerQueue } from './constructs/worker-queue.ts';
import { grantBucketKey, grantLedger, grantObjects, grantPublish } from './grants.ts';
import { acknowledge, acknowledgeObjectWildcard } from './nag.ts';
import type { DeploySettings, SubscriptionSetting } from './settings.ts';
import { sizeWorker, type WorkerSize } from './worker-sizing.ts';

export interface CldistStackProps extends StackProps {
  config: CldistConfig;
  deploy: DeploySettings;
  /** Directory holding package-lock.json, `functions/` and `keys/`. */
  projectRoot: string;
  /** Handler modules, by default `functions/{poller,mirror-worker,api}/handler.ts` under projectRoot. */
  entries?: Partial<Record<'poller' | 'worker' | 'api', string>>;
}

const retentionByDays = new Map<number, logs.RetentionDays>(
  Object.values(logs.RetentionDays)
    .filter((value): value is logs.RetentionDays => typeof value === 'number')
    .map((value) => [value as number, value]),
);

function retention(days: number): logs.RetentionDays {
  const found = retentionByDays.get(days);
  if (found === undefined) {
    throw new ConfigError(
      `cldist:deploy.logRetentionDays: ${days} is not a CloudWatch Logs retention period`,
    );
  }
  return found;
}

/**
 * Keyring files are bundled flat under `keys/` and the deployed config points at them by absolute path,
 * because the project-relative paths of the config mean nothing inside a Lambda bundle.
 */
function bundledKeyring(config: CldistConfig): { files: BundledFile[]; paths: string[] } {
  const files = config.keyring.files.map((file) => ({
    source: resolveProjectPath(file),
    target: CldistFunction.keyringTarget(file),
  }));
  const targets = files.map((file) => file.target);
  const duplicate = targets.find((target, index) => targets.indexOf(target) !== index);
  if (duplicate !== undefined) {
    throw new ConfigError(
      `keyring.files: two files are named ${basename(duplicate)}; they would overwrite each other in the bundle`,
    );
  }
  return { files, paths: targets.map((target) => CldistFunction.bundledPath(target)) };
}

/** The update payload keys, bundled the same way under `update-keys/`; none when update is not configured. */
function bundledUpdateKeys(config: CldistConfig): { files: BundledFile[]; paths: string[] } {
  const files = (config.update?.payloadKeys ?? []).map((file) => ({
    source: resolveProjectPath(file),
    target: `update-keys/${basename(file)}`,
  }));
  const targets = files.map((file) => file.target);
  const duplicate = targets.find((target, index) => targets.indexOf(target) !== index);
  if (duplicate !== undefined) {
    throw new ConfigError(
      `update.payloadKeys: two files are named ${basename(duplicate)}; they would overwrite each other in the bundle`,
    );
  }
  return { files, paths: targets.map((target) => CldistFunction.bundledPath(target)) };
}

const subscriptionProtocols: Record<SubscriptionSetting['protocol'], sns.SubscriptionProtocol> = {
  email: sns.SubscriptionProtocol.EMAIL,
  https: sns.SubscriptionProtocol.HTTPS,
  sqs: sns.SubscriptionProtocol.SQS,
};

function filterPolicy(setting: SubscriptionSetting): Record<string, sns.SubscriptionFilter> | undefined {
  const filter = setting.filter;
  if (filter === undefined) {
    return undefined;
  }
  const policy: Record<string, sns.SubscriptionFilter> = {};
  for (const [attribute, allowlist] of Object.entries(filter)) {
    if (allowlist !== undefined) {
      policy[attribute] = sns.SubscriptionFilter.stringFilter({ allowlist });
    }
  }
  return policy;
}

/**
 * The whole AWS deployment in one stack: the mirror pipeline (schedule → poller → queue → worker →
 * bucket), the instance config API, notifications, alarms and a dashboard. One stack because every
 * part shares the ledger table and nothing is deployed on its own.
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

    const accessLogsBucket = deploy.mirror.accessLogs
      ? new PrivateBucket(this, 'AccessLogsBucket', { logDestination: true })
      : undefined;

    const mirrorBucket = new PrivateBucket(this, 'MirrorBucket', {
      accessLogs: accessLogsBucket && { bucket: accessLogsBucket, prefix: 'mirror/' },
    });
    const configKey = new kms.Key(this, 'ConfigKey', {
      description: 'cldist instance configs (SSE-KMS on the config bucket)',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const configBucket = new PrivateBucket(this, 'ConfigBucket', {
      encryptionKey: configKey,
      accessLogs: accessLogsBucket && { bucket: accessLogsBucket, prefix: 'config/' },
    });

    const table = new dynamodb.Table(this, 'Ledger', {
      partitionKey: { name: ledgerKeySchema.partitionKey, type: dynamodb.AttributeType.STRING },
      // Fetch audit items carry their expiry (api.auditRetentionDays after the newest entry).
      timeToLiveAttribute: ledgerTtlAttribute,
      sortKey: { name: ledgerKeySchema.sortKey, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    table.addGlobalSecondaryIndex({
      indexName: ledgerKeySchema.gsi1Name,
      partitionKey: { name: ledgerKeySchema.gsi1PartitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: ledgerKeySchema.gsi1SortKey, type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.ALL,
    });

    const eventsTopic = new EncryptedTopic(this, 'Events', {
      description: 'cldist release and alert events',
    });
    for (const [index, setting] of deploy.subscriptions.entries()) {
      const policy = filterPolicy(setting);
      new sns.Subscription(this, `Subscription${index}`, {
        topic: eventsTopic.topic,
        protocol: subscriptionProtocols[setting.protocol],
        endpoint: setting.endpoint,
        rawMessageDelivery: setting.protocol === 'sqs' ? setting.rawMessageDelivery : undefined,
        filterPolicy: policy,
      });
    }
    const operator = new EncryptedTopic(this, 'Operator', {
      description: 'cldist operator alarms',
      publishingServices: ['cloudwatch.amazonaws.com'],
    });
    if (deploy.alarms.email !== undefined) {
      operator.topic.addSubscription(new subscriptions.EmailSubscription(deploy.alarms.email));
    }

    const keyring = bundledKeyring(config);
    const updateKeys = bundledUpdateKeys(config);
    const mirrorFiles = [...keyring.files, ...updateKeys.files];
    const mirrorStore = deployedMirrorStore(config, mirrorBucket.bucketName);
    const deployedConfig: CldistConfig = {
      ...config,
      store: mirrorStore,
      keyring: { ...config.keyring, files: keyring.paths },
      ...(config.update === undefined ? {} : { update: { ...config.update, payloadKeys: updateKeys.paths } }),
    };
    const trustKeyringKey = deploy.mirror.trustKeyringKey;
    const trustObjectKey = `${mirrorStore.prefix}${trustKeyringKey}`;

    const jobs = new WorkerQueue(this, 'Jobs', {
      consumerTimeout: Duration.seconds(this.workerSize.timeoutSeconds),
      maxReceiveCount: config.queue.retry.maxReceives,
    });

    // The poller and the worker read the same resources: both assemble the one mirror runtime.
    const mirrorResources = {
      tableName: table.tableName,
      topicArn: eventsTopic.topic.topicArn,
      mirrorBucket: mirrorBucket.bucketName,
      trustKeyringKey,
      jobsQueueUrl: jobs.queue.queueUrl,
    };
    const poller = new CldistFunction(this, 'Poller', {
      entry: entry('poller', 'poller'),
      projectRoot,
      description: 'cldist poller: reads each channel current/version.txt and enqueues new releases',
      serviceName: serviceNames.poller,
      config: deployedConfig,
      resources: mirrorResources,
      memorySize: 512,
      timeout: Duration.minutes(5),
      logRetentionDays: logRetention,
      files: mirrorFiles,
    });

    const worker = new CldistFunction(this, 'Worker', {
      entry: entry('worker', 'mirror-worker'),
      projectRoot,
      description: `cldist mirror worker: verifies and stores one artifact (sized for ${config.limits.maxArtifactBytes} bytes at ${deploy.worker.minThroughputMBps} MB/s)`,
      serviceName: serviceNames.worker,
      config: deployedConfig,
      resources: mirrorResources,
      memorySize: this.workerSize.memoryMiB,
      timeout: Duration.seconds(this.workerSize.timeoutSeconds),
      ephemeralStorageMiB: this.workerSize.ephemeralStorageMiB,
      logRetentionDays: logRetention,
      files: mirrorFiles,
    });

    worker.addEventSource(
      new SqsEventSource(jobs.queue, {
        batchSize: 1,
        reportBatchItemFailures: true,
        maxConcurrency: deploy.worker.maxConcurrency,
      }),
    );
    const scheduleRule = new eventbridge.Rule(this, 'PollSchedule', {
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

    grantLedger(poller, table);
    jobs.queue.grantSendMessages(poller);
    grantPublish(poller, eventsTopic.topic, eventsTopic.key);
    grantObjects(poller, mirrorBucket, ['s3:GetObject'], trustObjectKey);

    grantLedger(worker, table);
    grantObjects(
      worker,
      mirrorBucket,
      ['s3:GetObject', 's3:PutObject', 's3:AbortMultipartUpload', 's3:DeleteObject'],
      `${mirrorStore.prefix}*`,
    );
    grantPublish(worker, eventsTopic.topic, eventsTopic.key);
    acknowledgeObjectWildcard(
      worker.role ?? worker,
      mirrorBucket,
      'The worker writes {channel}/{board}/{version}/{file} for releases not known at deploy time. It may get, put, abort uploads and delete (finalize removes an artifact whose SHA-512 contradicts the signed DIGESTS), no ACLs, and only under the mirror prefix.',
      `${mirrorStore.prefix}*`,
    );

    const api = this.buildApi({
      config: deployedConfig,
      deploy,
      table,
      configBucket,
      configKey,
      logRetention,
      entry: entry('api', 'api'),
      projectRoot,
      jobs: jobs.queue,
    });
    const apiFunction = api.fn;
    // Config bodies no record points at (replaced, or written by a PUT that lost a race) are collected
    // here, never in the racing PUT: the API function itself, with a constant input it recognises.
    new eventbridge.Rule(this, 'ConfigBodySweep', {
      description: 'cldist: remove instance config bodies that no instance record points at',
      schedule: eventbridge.Schedule.rate(Duration.days(1)),
    }).addTarget(
      new targets.LambdaFunction(apiFunction, {
        event: eventbridge.RuleTargetInput.fromObject(configBodySweepEvent),
        retryAttempts: 0,
      }),
    );

    const distribution = deploy.mirror.cloudFront
      ? new MirrorDistribution(this, 'MirrorDistribution', {
          bucket: mirrorBucket,
          prefix: mirrorStore.prefix,
        })
      : undefined;

    const monitoring = new CldistMonitoring(this, 'Monitoring', {
      alarmTopic: operator.topic,
      jobs,
      poller,
      worker,
      apiFunction,
      httpApi: api.httpApi,
      apiStage: api.stage.stageName,
      table,
      pollEvery: Duration.minutes(config.schedule.everyMinutes),
      api5xxPerFiveMinutes: deploy.alarms.api5xxPerFiveMinutes,
    });
    const dashboard = monitoring.dashboard;

    new CfnOutput(this, 'ApiUrl', {
      value: api.publicUrl,
      description: 'Base URL of the instance config API',
    });
    new CfnOutput(this, 'MirrorBucketName', { value: mirrorBucket.bucketName });
    new CfnOutput(this, 'TrustKeyringUri', {
      value: `s3://${mirrorBucket.bucketName}/${trustObjectKey}`,
      description: 'Upload rotated signing keys here (ASCII-armored public keys)',
    });
    new CfnOutput(this, 'ConfigBucketName', { value: configBucket.bucketName });
    new CfnOutput(this, 'EventsTopicArn', { value: eventsTopic.topic.topicArn });
    new CfnOutput(this, 'OperatorTopicArn', { value: operator.topic.topicArn });
    new CfnOutput(this, 'JobsQueueArn', { value: jobs.queue.queueArn });
    new CfnOutput(this, 'JobsDeadLetterQueueUrl', { value: jobs.deadLetterQueue.queueUrl });
    new CfnOutput(this, 'JobsDeadLetterQueueArn', { value: jobs.deadLetterQueue.queueArn });
    new CfnOutput(this, 'PollerFunctionName', { value: poller.functionName });
    new CfnOutput(this, 'WorkerFunctionName', { value: worker.functionName });
    new CfnOutput(this, 'ApiFunctionName', { value: api.fn.functionName });
    new CfnOutput(this, 'WorkerLogGroupName', { value: worker.ownLogGroup.logGroupName });
    new CfnOutput(this, 'PollerLogGroupName', { value: poller.ownLogGroup.logGroupName });
    new CfnOutput(this, 'ApiLogGroupName', { value: api.fn.ownLogGroup.logGroupName });
    new CfnOutput(this, 'LedgerTableName', { value: table.tableName });
    new CfnOutput(this, 'DashboardUrl', {
      value: `https://${this.region}.console.aws.amazon.com/cloudwatch/home?region=${this.region}#dashboards:name=${dashboard.dashboardName}`,
    });
    if (distribution !== undefined) {
      new CfnOutput(this, 'MirrorUrl', {
        value: `https://${distribution.distributionDomainName}`,
        description: 'The mirror over HTTPS: flatcar-install -b MirrorUrl/{channel}/{board}',
      });
    }
  }

  private buildApi(parts: {
    config: CldistConfig;
    deploy: DeploySettings;
    table: dynamodb.Table;
    configBucket: PrivateBucket;
    configKey: kms.Key;
    logRetention: logs.RetentionDays;
    entry: string;
    projectRoot: string;
    /** The release admin routes send jobs here (retry). */
    jobs: sqs.IQueue;
  }) {
    const { config, deploy, table, configBucket, configKey } = parts;
    const proxySecret = new MetadataProxySecret(this, 'MetadataProxySecret', {
      description: 'cldist: shared secret of the metadata proxies (HMAC-SHA256 of X-Instance-ID)',
    });
    const domain =
      deploy.api.domainName !== undefined && deploy.api.certificateArn !== undefined
        ? new apigw.DomainName(this, 'ApiDomain', {
            domainName: deploy.api.domainName,
            certificate: acm.Certificate.fromCertificateArn(
              this,
              'ApiCertificate',
              deploy.api.certificateArn,
            ),
            securityPolicy: apigw.SecurityPolicy.TLS_1_2,
          })
        : undefined;
    const httpApi = new apigw.HttpApi(this, 'Api', {
      description: 'cldist instance config API',
      createDefaultStage: false,
      disableExecuteApiEndpoint: domain !== undefined,
    });
    const publicUrl =
      config.api.publicBaseUrl ??
      (domain === undefined ? httpApi.apiEndpoint : `https://${deploy.api.domainName}`);

    const fn = new CldistFunction(this, 'ApiHandler', {
      entry: parts.entry,
      projectRoot: parts.projectRoot,
      description: 'cldist API: instance config admin and fetch, release list and retry',
      serviceName: serviceNames.api,
      config: { ...config, api: { ...config.api, publicBaseUrl: publicUrl } },
      resources: {
        tableName: table.tableName,
        configBucket: configBucket.bucketName,
        configKmsKeyId: configKey.keyArn,
        jobsQueueUrl: parts.jobs.queueUrl,
        metadataProxySecretArn: proxySecret.secret.secretArn,
      },
      memorySize: 1024,
      timeout: Duration.seconds(15),
      logRetentionDays: parts.logRetention,
    });
    grantLedger(fn, table);
    parts.jobs.grantSendMessages(fn);
    grantObjects(fn, configBucket, ['s3:GetObject', 's3:PutObject', 's3:DeleteObject']);
    grantBucketKey(fn, configKey);
    proxySecret.grantReadAccepted(fn);
    acknowledgeObjectWildcard(
      fn.role ?? fn,
      configBucket,
      'Instance configs are keyed by instance ids created at run time through the admin API; the API may only get, put and delete objects in the config bucket.',
    );

    const integration = new HttpLambdaIntegration('ApiIntegration', fn, {
      payloadFormatVersion: apigw.PayloadFormatVersion.VERSION_2_0,
    });
    const iamAuthorizer = new HttpIamAuthorizer();
    // One gateway route per app route, from the list the app itself registers.
    const addRoutes = (routes: readonly ApiRoute[], authorizer?: apigw.IHttpRouteAuthorizer) =>
      routes.flatMap((route) =>
        httpApi.addRoutes({
          path: route.path,
          methods: [apigw.HttpMethod[route.method]],
          integration,
          authorizer,
        }),
      );
    const instanceRoutes = addRoutes(apiRoutes.instance);
    const metadataRoutes = addRoutes(apiRoutes.metadata);
    const adminRoutes = addRoutes(apiRoutes.admin, iamAuthorizer);

    const accessLogs = new logs.LogGroup(this, 'ApiAccessLogs', {
      retention: parts.logRetention,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const stage = new apigw.HttpStage(this, 'ApiStage', {
      httpApi,
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: deploy.api.defaultRateLimit, burstLimit: deploy.api.defaultBurstLimit },
      accessLogSettings: {
        destination: new apigw.LogGroupLogDestination(accessLogs),
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            requestTime: '$context.requestTime',
            ip: '$context.identity.sourceIp',
            userAgent: '$context.identity.userAgent',
            caller: '$context.identity.userArn',
            routeKey: '$context.routeKey',
            status: '$context.status',
            responseLength: '$context.responseLength',
            latencyMs: '$context.responseLatency',
            integrationError: '$context.integrationErrorMessage',
          }),
        ),
      },
      domainMapping: domain === undefined ? undefined : { domainName: domain },
    });
    // RouteSettings is untyped JSON in the L1, so its keys are written in CloudFormation's casing.
    const cfnStage = stage.node.defaultChild as apigw.CfnStage;
    cfnStage.routeSettings = Object.fromEntries([
      ...instanceRouteKeys.map((key) => [
        key,
        {
          ThrottlingRateLimit: deploy.api.instanceRateLimit,
          ThrottlingBurstLimit: deploy.api.instanceBurstLimit,
        },
      ]),
      ...metadataRouteKeys.map((key) => [
        key,
        {
          ThrottlingRateLimit: deploy.api.metadataRateLimit,
          ThrottlingBurstLimit: deploy.api.metadataBurstLimit,
        },
      ]),
    ]);
    for (const route of [...instanceRoutes, ...metadataRoutes, ...adminRoutes]) {
      stage.node.addDependency(route);
    }
    for (const route of metadataRoutes) {
      acknowledge(
        route,
        'AwsSolutions-APIG4',
        'Metadata routes are called by the trusted metadata proxies, which cannot sign with IAM from a ' +
          'hypervisor outside AWS; each request carries an HMAC-SHA256 of the instance id (or address) under ' +
          'the shared secret in Secrets Manager, checked by the function in constant time, and the routes are ' +
          'throttled separately.',
      );
    }
    for (const route of instanceRoutes) {
      acknowledge(
        route,
        'AwsSolutions-APIG4',
        'Instance routes are fetched by Ignition at first boot, which cannot sign requests. Each instance ' +
          'presents its own 256-bit token (checked in constant time by the function; wrong token = 404), ' +
          'and the route is throttled separately.',
      );
    }
    if (domain !== undefined) {
      new CfnOutput(this, 'ApiDomainTarget', {
        value: domain.regionalDomainName,
        description: `Point a CNAME (or alias) for ${deploy.api.domainName} at this name`,
      });
    }
    new CfnOutput(this, 'MetadataProxySecretArn', {
      value: proxySecret.secret.secretArn,
      description: 'Secret the metadata proxies sign with; copy its AWSCURRENT value to each --secret-file',
    });
    return { httpApi, fn, publicUrl, stage };
  }
}
