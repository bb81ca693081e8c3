import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { stackName } from '../../cdk/build-app.ts';
import { alarmNames } from '../../cdk/constructs/cldist-monitoring.ts';
import { visibilityToFunctionTimeoutRatio } from '../../cdk/constructs/worker-queue.ts';
import { instancePartitionPatterns, ledgerKeyActions } from '../../cdk/grants.ts';
import {
  adminRouteKeys,
  bootRouteKeys,
  instanceRouteKeys,
  metadataRouteKeys,
  updateRouteKeys,
} from '../../shared/api-routes.ts';
import { configBodySweepEvent } from '../../shared/instances/body-sweep.ts';
import { auditTtlAttribute } from '../../shared/instances/repository.ts';
import { ledgerKeySchema, ledgerTtlAttribute } from '../../shared/ledger/table.ts';
import { parseRuntimeEnv, runtimeEnvNames } from '../../shared/runtime-env.ts';
import { metricNames, metricNamespace, serviceNames } from '../../shared/telemetry-names.ts';
import {
  type AlarmedMetric,
  alarmedMetric,
  functionEnvironment,
  idOf,
  logicalIdsOfType,
  only,
  propertiesOf,
  type Synthesized,
  synthesizeDefault,
} from './support.ts';

interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: unknown;
}

function actionsOf(statement: Statement): string[] {
  return Array.isArray(statement.Action) ? statement.Action : [statement.Action];
}

/** Every statement attached to the role of the function whose logical ID starts with `prefix`. */
function statementsOf(synth: Synthesized, prefix: string): Statement[] {
  const fn = propertiesOf(synth.resources, idOf(synth.resources, 'AWS::Lambda::Function', prefix));
  const roleId = (fn.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
  return Object.values(synth.resources)
    .filter((r) => r.Type === 'AWS::IAM::Policy')
    .filter((r) => JSON.stringify(r.Properties?.Roles).includes(`"${roleId}"`))
    .flatMap((r) => (propertiesOfResource(r).PolicyDocument as { Statement: Statement[] }).Statement);
}

function propertiesOfResource(resource: { Properties?: Record<string, unknown> }): Record<string, unknown> {
  if (resource.Properties === undefined) {
    throw new Error('policy without properties');
  }
  return resource.Properties;
}

function mentions(statement: Statement, logicalId: string): boolean {
  return JSON.stringify(statement.Resource).includes(`"${logicalId}"`);
}

const environmentOf = functionEnvironment;

describe('the CDK stack with default settings', () => {
  let synth: Synthesized;
  beforeAll(() => {
    synth = synthesizeDefault();
  });

  it('builds every function on nodejs22.x, arm64, with tracing, JSON logs and its own retained log group', () => {
    const functions = logicalIdsOfType(synth.resources, 'AWS::Lambda::Function');
    expect(functions).toHaveLength(3);
    for (const id of functions) {
      const props = synth.resources[id]?.Properties ?? {};
      expect(props.Runtime).toBe('nodejs22.x');
      expect(props.Architectures).toEqual(['arm64']);
      expect(props.TracingConfig).toEqual({ Mode: 'Active' });
      const logGroupRef = (props.LoggingConfig as { LogGroup: { Ref: string } }).LogGroup.Ref;
      expect(props.LoggingConfig).toMatchObject({ LogFormat: 'JSON' });
      expect(synth.resources[logGroupRef]?.Properties?.RetentionInDays).toBe(90);
    }
    synth.template.allResourcesProperties('AWS::IAM::Role', { ManagedPolicyArns: Match.absent() });
  });

  it('gives each function an environment its handler parses at cold start, with only its own resources', () => {
    const expected = {
      Poller: ['jobsQueueUrl', 'mirrorBucket', 'tableName', 'topicArn', 'trustKeyringKey'],
      Worker: ['jobsQueueUrl', 'mirrorBucket', 'tableName', 'topicArn', 'trustKeyringKey'],
      ApiHandler: [
        'configBucket',
        'configKmsKeyId',
        'jobsQueueUrl',
        'metadataProxySecretArn',
        'mirrorPublicUrl',
        'tableName',
      ],
    };
    for (const [prefix, keys] of Object.entries(expected)) {
      const env = parseRuntimeEnv(environmentOf(synth, prefix));
      expect(Object.keys(env.resources).sort()).toEqual(keys);
      expect(env.config.store).toMatchObject({
        kind: 's3',
        bucket: expect.stringMatching(/^cldist-mirrorbucket/),
      });
      expect(env.config.keyring.files).toEqual([
        '/var/task/keys/Flatcar_Image_Signing_Key.asc',
        '/var/task/keys/CoreOS_Image_Signing_Key.asc',
      ]);
    }
    const api = parseRuntimeEnv(environmentOf(synth, 'ApiHandler'));
    expect(api.config.api.publicBaseUrl).toBe('https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com');
    // Network boot scripts name the kernel and initramfs under the mirror's CloudFront URL.
    expect(api.config.boot.mirrorBaseUrl).toBe('https://d111111abcdef8.cloudfront.net');
    // Omaha answers name update payloads on CloudFront, the mirror's only public face.
    expect(api.resources.mirrorPublicUrl).toBe('https://d111111abcdef8.cloudfront.net');
    expect(parseRuntimeEnv(environmentOf(synth, 'Poller')).resources.trustKeyringKey).toBe(
      'trust/keyring.asc',
    );
    expect(environmentOf(synth, 'Poller').POWERTOOLS_SERVICE_NAME).toBe(serviceNames.poller);
    expect(Object.keys(environmentOf(synth, 'Worker'))).toContain(runtimeEnvNames.config);
  });

  it('sizes the worker for the largest allowed artifact and gives SQS six times its timeout', () => {
    const worker =
      synth.resources[idOf(synth.resources, 'AWS::Lambda::Function', 'Worker')]?.Properties ?? {};
    expect(worker.MemorySize).toBe(1769);
    expect(worker.Timeout).toBe(404);
    expect(worker.EphemeralStorage).toEqual({ Size: 512 });
    const queue = synth.resources[idOf(synth.resources, 'AWS::SQS::Queue', 'JobsQueue')]?.Properties ?? {};
    expect(queue.VisibilityTimeout).toBeGreaterThanOrEqual(
      visibilityToFunctionTimeoutRatio * (worker.Timeout as number),
    );
  });

  it('dead-letters a job after five deliveries into an encrypted DLQ, and both queues refuse plain HTTP', () => {
    const dlq = idOf(synth.resources, 'AWS::SQS::Queue', 'JobsDeadLetter');
    synth.template.hasResourceProperties('AWS::SQS::Queue', {
      RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [dlq, 'Arn'] }, maxReceiveCount: 5 },
      SqsManagedSseEnabled: true,
    });
    synth.template.allResourcesProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true });
    for (const queue of logicalIdsOfType(synth.resources, 'AWS::SQS::Queue')) {
      synth.template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: queue }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          ]),
        },
      });
    }
  });

  it('feeds the worker one job at a time, reporting partial batch failures, with bounded concurrency', () => {
    synth.template.resourceCountIs('AWS::Lambda::EventSourceMapping', 1);
    synth.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: idOf(synth.resources, 'AWS::Lambda::Function', 'Worker') },
      EventSourceArn: { 'Fn::GetAtt': [idOf(synth.resources, 'AWS::SQS::Queue', 'JobsQueue'), 'Arn'] },
      BatchSize: 1,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 2 },
    });
  });

  it('runs the poller on the configured schedule without async retries', () => {
    const poller = idOf(synth.resources, 'AWS::Lambda::Function', 'Poller');
    synth.template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(15 minutes)',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [poller, 'Arn'] } })],
    });
    synth.template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: poller },
      MaximumRetryAttempts: 0,
    });
  });

  it('keeps both buckets private, TLS-only and encrypted, and aborts stale multipart uploads after a day', () => {
    const buckets = logicalIdsOfType(synth.resources, 'AWS::S3::Bucket');
    expect(buckets).toHaveLength(2);
    for (const bucket of buckets) {
      synth.template.hasResourceProperties('AWS::S3::Bucket', {
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        LifecycleConfiguration: {
          Rules: [
            Match.objectLike({
              AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
              Status: 'Enabled',
            }),
          ],
        },
      });
      synth.template.hasResourceProperties('AWS::S3::BucketPolicy', {
        Bucket: { Ref: bucket },
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          ]),
        },
      });
      expect(synth.resources[bucket]?.Properties?.BucketEncryption).toBeDefined();
    }
    const mirror = idOf(synth.resources, 'AWS::S3::Bucket', 'MirrorBucket');
    expect(synth.resources[mirror]?.Properties?.BucketEncryption).toEqual({
      ServerSideEncryptionConfiguration: [
        expect.objectContaining({ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }),
      ],
    });
  });

  it('encrypts the config bucket with a customer-managed, rotated key', () => {
    const key = idOf(synth.resources, 'AWS::KMS::Key', 'ConfigKey');
    synth.template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    expect(synth.resources[key]?.Properties?.EnableKeyRotation).toBe(true);
    synth.template.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          {
            BucketKeyEnabled: true,
            ServerSideEncryptionByDefault: {
              SSEAlgorithm: 'aws:kms',
              KMSMasterKeyID: { 'Fn::GetAtt': [key, 'Arn'] },
            },
          },
        ],
      },
    });
  });

  it('keeps the ledger on demand, with point-in-time recovery and the shared key schema', () => {
    synth.template.hasResourceProperties('AWS::DynamoDB::Table', {
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      KeySchema: [
        { AttributeName: ledgerKeySchema.partitionKey, KeyType: 'HASH' },
        { AttributeName: ledgerKeySchema.sortKey, KeyType: 'RANGE' },
      ],
      GlobalSecondaryIndexes: [
        Match.objectLike({
          IndexName: ledgerKeySchema.gsi1Name,
          KeySchema: [
            { AttributeName: ledgerKeySchema.gsi1PartitionKey, KeyType: 'HASH' },
            { AttributeName: ledgerKeySchema.gsi1SortKey, KeyType: 'RANGE' },
          ],
        }),
      ],
    });
  });

  it('expires fetch audit items through the table TTL, on the attribute the repository writes', () => {
    synth.template.hasResourceProperties('AWS::DynamoDB::Table', {
      TimeToLiveSpecification: { AttributeName: ledgerTtlAttribute, Enabled: true },
    });
    expect(auditTtlAttribute).toBe(ledgerTtlAttribute);
  });

  it('runs the config body sweep daily in the API function, with the input its handler recognises', () => {
    const api = idOf(synth.resources, 'AWS::Lambda::Function', 'ApiHandler');
    synth.template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 day)',
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [api, 'Arn'] },
          Input: JSON.stringify(configBodySweepEvent),
        }),
      ],
    });
  });

  it('encrypts both topics with rotated keys and refuses publishes over plain HTTP', () => {
    for (const topic of logicalIdsOfType(synth.resources, 'AWS::SNS::Topic')) {
      const keyRef = (
        propertiesOf(synth.resources, topic).KmsMasterKeyId as { 'Fn::GetAtt': [string, string] }
      )['Fn::GetAtt'][0];
      expect(synth.resources[keyRef]?.Properties?.EnableKeyRotation).toBe(true);
      synth.template.hasResourceProperties('AWS::SNS::TopicPolicy', {
        Topics: [{ Ref: topic }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          ]),
        },
      });
    }
  });

  it('authorises admin routes with IAM and leaves instance routes to their token, and Omaha open', () => {
    for (const routeKey of adminRouteKeys) {
      synth.template.hasResourceProperties('AWS::ApiGatewayV2::Route', {
        RouteKey: routeKey,
        AuthorizationType: 'AWS_IAM',
      });
    }
    for (const routeKey of instanceRouteKeys) {
      synth.template.hasResourceProperties('AWS::ApiGatewayV2::Route', {
        RouteKey: routeKey,
        AuthorizationType: 'NONE',
      });
    }
    for (const routeKey of [...metadataRouteKeys, ...updateRouteKeys, ...bootRouteKeys]) {
      synth.template.hasResourceProperties('AWS::ApiGatewayV2::Route', {
        RouteKey: routeKey,
        AuthorizationType: 'NONE',
      });
    }
    expect(updateRouteKeys).toEqual(['POST /v1/update']);
    synth.template.resourceCountIs(
      'AWS::ApiGatewayV2::Route',
      adminRouteKeys.length +
        instanceRouteKeys.length +
        metadataRouteKeys.length +
        updateRouteKeys.length +
        bootRouteKeys.length,
    );
    synth.template.hasResourceProperties('AWS::ApiGatewayV2::Integration', { PayloadFormatVersion: '2.0' });
  });

  it('serves the release list and retry only to IAM-authorised callers, through the API function', () => {
    for (const routeKey of [
      'GET /v1/releases',
      'POST /v1/releases/{source}/{channel}/{board}/{version}/retry',
    ]) {
      synth.template.hasResourceProperties('AWS::ApiGatewayV2::Route', {
        RouteKey: routeKey,
        AuthorizationType: 'AWS_IAM',
        Target: Match.anyValue(),
      });
    }
    const api = parseRuntimeEnv(environmentOf(synth, 'ApiHandler'));
    expect(api.resources.jobsQueueUrl).toBe(
      parseRuntimeEnv(environmentOf(synth, 'Poller')).resources.jobsQueueUrl,
    );
  });

  it('throttles every route, the unauthenticated ones separately, and writes access logs without query strings', () => {
    const stage = only(logicalIdsOfType(synth.resources, 'AWS::ApiGatewayV2::Stage'), 'stage');
    const props = synth.resources[stage]?.Properties ?? {};
    expect(props.DefaultRouteSettings).toEqual({ ThrottlingRateLimit: 10, ThrottlingBurstLimit: 20 });
    expect(props.RouteSettings).toEqual(
      Object.fromEntries([
        ...instanceRouteKeys.map((key) => [key, { ThrottlingRateLimit: 20, ThrottlingBurstLimit: 40 }]),
        ...metadataRouteKeys.map((key) => [key, { ThrottlingRateLimit: 100, ThrottlingBurstLimit: 200 }]),
        ...updateRouteKeys.map((key) => [key, { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 }]),
        ...bootRouteKeys.map((key) => [key, { ThrottlingRateLimit: 20, ThrottlingBurstLimit: 40 }]),
      ]),
    );
    const access = props.AccessLogSettings as { DestinationArn: unknown; Format: string };
    expect(JSON.parse(access.Format)).toMatchObject({
      requestId: '$context.requestId',
      status: '$context.status',
    });
    expect(access.Format).not.toMatch(/querystring|requestOverride|path/i);
  });

  it('alarms to the operator topic on dead letters, worker and poller errors, API 5xx and expiring keys', () => {
    const operator = idOf(synth.resources, 'AWS::SNS::Topic', 'OperatorTopic');
    const alarms = logicalIdsOfType(synth.resources, 'AWS::CloudWatch::Alarm').map((id) => {
      const props = synth.resources[id]?.Properties ?? {};
      const alarm: Record<string, unknown> & { metric: AlarmedMetric } = {
        ...props,
        metric: alarmedMetric(props),
      };
      return alarm;
    });
    for (const alarm of alarms) {
      expect(alarm.AlarmActions).toEqual([{ Ref: operator }]);
    }
    expect(alarms.map((a) => a.AlarmName).sort()).toEqual(
      Object.values(alarmNames)
        .map((name) => `${stackName}-${name}`)
        .sort(),
    );
    const byMetric = (namespace: string, metricName: string) =>
      alarms.filter((a) => a.metric.namespace === namespace && a.metric.metricName === metricName);
    const dlq = idOf(synth.resources, 'AWS::SQS::Queue', 'JobsDeadLetter');
    expect(byMetric('AWS/SQS', 'ApproximateNumberOfMessagesVisible')).toEqual([
      expect.objectContaining({
        metric: expect.objectContaining({
          dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [dlq, 'QueueName'] } }],
          statistic: 'Maximum',
          period: 300,
        }),
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
        EvaluationPeriods: 1,
        TreatMissingData: 'notBreaching',
      }),
    ]);
    const errorsOf = (prefix: string) =>
      byMetric('AWS/Lambda', 'Errors').filter(
        (a) =>
          JSON.stringify(a.metric.dimensions) ===
          JSON.stringify([
            { Name: 'FunctionName', Value: { Ref: idOf(synth.resources, 'AWS::Lambda::Function', prefix) } },
          ]),
      );
    const lambdaErrors = {
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      EvaluationPeriods: 1,
      TreatMissingData: 'notBreaching',
    };
    expect(errorsOf('Worker')).toEqual([
      expect.objectContaining({
        ...lambdaErrors,
        metric: expect.objectContaining({ statistic: 'Sum', period: 300 }),
      }),
    ]);
    expect(errorsOf('Poller')).toEqual([
      expect.objectContaining({
        ...lambdaErrors,
        metric: expect.objectContaining({ statistic: 'Sum', period: 900 }),
      }),
    ]);
    const api = idOf(synth.resources, 'AWS::ApiGatewayV2::Api', 'Api');
    expect(byMetric('AWS/ApiGateway', '5xx')).toEqual([
      expect.objectContaining({
        Threshold: 10,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        metric: expect.objectContaining({
          dimensions: [
            { Name: 'ApiId', Value: { Ref: api } },
            { Name: 'Stage', Value: '$default' },
          ],
          statistic: 'Sum',
          period: 300,
        }),
      }),
    ]);
    expect(byMetric(metricNamespace, metricNames.pollErrors)).toEqual([
      expect.objectContaining({
        metric: expect.objectContaining({
          dimensions: [{ Name: 'service', Value: serviceNames.poller }],
          statistic: 'Sum',
          period: 900,
        }),
        EvaluationPeriods: 2,
        DatapointsToAlarm: 2,
      }),
    ]);
    expect(byMetric('AWS/Lambda', 'Invocations')).toEqual([
      expect.objectContaining({
        ComparisonOperator: 'LessThanThreshold',
        Threshold: 1,
        EvaluationPeriods: 3,
        TreatMissingData: 'breaching',
        metric: expect.objectContaining({ statistic: 'Sum', period: 900 }),
      }),
    ]);
    expect(alarms).toHaveLength(8);
    expect(byMetric(metricNamespace, metricNames.pruneFailures)).toEqual([
      expect.objectContaining({
        metric: expect.objectContaining({
          dimensions: [{ Name: 'service', Value: serviceNames.poller }],
          statistic: 'Sum',
        }),
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        Threshold: 1,
        EvaluationPeriods: 2,
        DatapointsToAlarm: 2,
      }),
    ]);
    expect(byMetric(metricNamespace, metricNames.signingKeyExpiring)).toEqual([
      expect.objectContaining({
        metric: expect.objectContaining({
          dimensions: [{ Name: 'service', Value: serviceNames.poller }],
          statistic: 'Maximum',
          period: 3600,
        }),
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        Threshold: 1,
      }),
    ]);
  });

  it('lets CloudWatch use the operator topic key, or alarms could not publish to the encrypted topic', () => {
    const key = idOf(synth.resources, 'AWS::KMS::Key', 'OperatorKey');
    expect(JSON.stringify(synth.resources[key]?.Properties?.KeyPolicy)).toContain('cloudwatch.amazonaws.com');
    const eventsKey = idOf(synth.resources, 'AWS::KMS::Key', 'EventsKey');
    expect(JSON.stringify(synth.resources[eventsKey]?.Properties?.KeyPolicy)).not.toContain('cloudwatch');
  });

  it('has a dashboard covering the queue, the functions, the API and the signing key metric', () => {
    const dashboard = only(logicalIdsOfType(synth.resources, 'AWS::CloudWatch::Dashboard'), 'dashboard');
    const body = JSON.stringify(synth.resources[dashboard]?.Properties?.DashboardBody);
    for (const needle of [
      'ApproximateNumberOfMessagesVisible',
      'Invocations',
      '5xx',
      metricNames.signingKeyExpiring,
    ]) {
      expect(body).toContain(needle);
    }
  });

  it('exports the API URL, bucket, topic ARNs and dashboard as outputs', () => {
    const outputs = Object.keys(synth.template.toJSON().Outputs as Record<string, unknown>);
    expect(outputs).toEqual(
      expect.arrayContaining([
        'ApiUrl',
        'MirrorBucketName',
        'EventsTopicArn',
        'OperatorTopicArn',
        'DashboardUrl',
        'TrustKeyringUri',
        'MirrorUrl',
      ]),
    );
  });

  it('serves the still-private mirror through CloudFront by default: OAC, HTTPS, GET and HEAD, current/ fresh', () => {
    const mirror = idOf(synth.resources, 'AWS::S3::Bucket', 'MirrorBucket');
    const distribution = idOf(synth.resources, 'AWS::CloudFront::Distribution', 'MirrorDistribution');
    synth.template.resourceCountIs('AWS::CloudFront::OriginAccessControl', 1);
    synth.template.hasResourceProperties('AWS::CloudFront::OriginAccessControl', {
      OriginAccessControlConfig: Match.objectLike({ SigningBehavior: 'always', SigningProtocol: 'sigv4' }),
    });
    const config = propertiesOf(synth.resources, distribution).DistributionConfig as {
      Origins: { OriginAccessControlId?: unknown; S3OriginConfig?: { OriginAccessIdentity?: string } }[];
      DefaultCacheBehavior: { ViewerProtocolPolicy: string; AllowedMethods: string[] };
      CacheBehaviors: { PathPattern: string; ViewerProtocolPolicy: string; CachePolicyId: unknown }[];
    };
    expect(config.Origins).toHaveLength(1);
    expect(config.Origins[0]?.OriginAccessControlId).toBeDefined();
    expect(config.Origins[0]?.S3OriginConfig?.OriginAccessIdentity ?? '').toBe('');
    expect(config.DefaultCacheBehavior).toMatchObject({
      ViewerProtocolPolicy: 'redirect-to-https',
      AllowedMethods: ['GET', 'HEAD'],
    });
    expect(config.CacheBehaviors.map((b) => [b.PathPattern, b.ViewerProtocolPolicy])).toEqual([
      ['*/current/*', 'redirect-to-https'],
    ]);
    synth.template.hasResourceProperties('AWS::CloudFront::CachePolicy', {
      CachePolicyConfig: Match.objectLike({ DefaultTTL: 60, MaxTTL: 60 }),
    });
    synth.template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: mirror },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Allow',
            Principal: { Service: 'cloudfront.amazonaws.com' },
            Action: 's3:GetObject',
            Condition: { StringEquals: { 'AWS:SourceArn': Match.anyValue() } },
          }),
        ]),
      },
    });
    const outputs = synth.template.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(JSON.stringify(outputs.MirrorUrl?.Value)).toContain(distribution);
  });
});

describe('least privilege, by IAM policy statement', () => {
  let synth: Synthesized;
  let ids: Record<'mirror' | 'config' | 'configKey' | 'table' | 'queue' | 'dlq', string>;
  beforeAll(() => {
    synth = synthesizeDefault();
    ids = {
      mirror: idOf(synth.resources, 'AWS::S3::Bucket', 'MirrorBucket'),
      config: idOf(synth.resources, 'AWS::S3::Bucket', 'ConfigBucket'),
      configKey: idOf(synth.resources, 'AWS::KMS::Key', 'ConfigKey'),
      table: idOf(synth.resources, 'AWS::DynamoDB::Table', 'Ledger'),
      queue: idOf(synth.resources, 'AWS::SQS::Queue', 'JobsQueue'),
      dlq: idOf(synth.resources, 'AWS::SQS::Queue', 'JobsDeadLetter'),
    };
  });

  it('grants no wildcard actions to any function', () => {
    for (const prefix of ['Poller', 'Worker', 'ApiHandler']) {
      for (const statement of statementsOf(synth, prefix)) {
        expect(statement.Effect).toBe('Allow');
        for (const action of actionsOf(statement)) {
          expect(action, `${prefix}: ${action}`).not.toContain('*');
        }
      }
    }
  });

  it('lets the API touch configs and the ledger, send release retries to the jobs queue, and never the mirror', () => {
    const statements = statementsOf(synth, 'ApiHandler');
    expect(statements.filter((s) => mentions(s, ids.mirror))).toEqual([]);
    expect(statements.filter((s) => actionsOf(s).some((a) => a.startsWith('sns:')))).toEqual([]);
    const queueStatement = only(
      statements.filter((s) => actionsOf(s).some((a) => a.startsWith('sqs:'))),
      'API queue statement',
    );
    expect(actionsOf(queueStatement)).toContain('sqs:SendMessage');
    expect(actionsOf(queueStatement)).not.toContain('sqs:ReceiveMessage');
    expect(mentions(queueStatement, ids.queue) && !mentions(queueStatement, ids.dlq)).toBe(true);
    const objectWrites = statements.filter((s) => actionsOf(s).includes('s3:PutObject'));
    expect(objectWrites).toHaveLength(1);
    expect(mentions(only(objectWrites, 'API object write'), ids.config)).toBe(true);
    expect(
      statements.some((s) => mentions(s, ids.configKey) && actionsOf(s).includes('kms:GenerateDataKey')),
    ).toBe(true);
  });

  it("encrypts the ledger table with the config bucket's customer-managed key (inline configs live there)", () => {
    const keyArn = { 'Fn::GetAtt': [ids.configKey, 'Arn'] };
    synth.template.hasResourceProperties('AWS::DynamoDB::Table', {
      SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: keyArn },
    });
    synth.template.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          Match.objectLike({
            ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: keyArn },
          }),
        ],
      },
    });
    const tableProperties = propertiesOf(synth.resources, ids.table);
    expect(tableProperties.SSESpecification).toEqual({
      SSEEnabled: true,
      SSEType: 'KMS',
      KMSMasterKeyId: keyArn,
    });
  });

  it('lets every ledger user use the table key through DynamoDB only, and only the API into instance items', () => {
    for (const prefix of ['Poller', 'Worker', 'ApiHandler']) {
      const statements = statementsOf(synth, prefix);
      const keyStatement = only(
        statements.filter((s) => mentions(s, ids.configKey) && s.Condition !== undefined),
        `${prefix} table key statement`,
      );
      expect(actionsOf(keyStatement).sort()).toEqual([...ledgerKeyActions].sort());
      expect(JSON.stringify(keyStatement.Condition)).toMatch(/"kms:ViaService".*dynamodb\./);
      const ledger = only(
        statements.filter((s) => mentions(s, ids.table)),
        `${prefix} ledger statement`,
      );
      if (prefix === 'ApiHandler') expect(ledger.Condition).toBeUndefined();
      else {
        expect(ledger.Condition).toEqual({
          'ForAllValues:StringNotLike': { 'dynamodb:LeadingKeys': instancePartitionPatterns },
        });
      }
    }
  });

  it('lets the poller read only the trust keyring object, delete mirror objects (retention), and nothing of the configs', () => {
    const statements = statementsOf(synth, 'Poller');
    const viaDynamoOnly = (s: Statement) => JSON.stringify(s.Condition ?? {}).includes('kms:ViaService');
    expect(
      statements.filter((s) => mentions(s, ids.config) || (mentions(s, ids.configKey) && !viaDynamoOnly(s))),
    ).toEqual([]);
    const objectStatements = statements.filter((s) =>
      actionsOf(s).some((a) => a.startsWith('s3:') && a !== 's3:ListBucket'),
    );
    expect(objectStatements).toEqual([
      {
        Effect: 'Allow',
        Action: 's3:GetObject',
        Resource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': [ids.mirror, 'Arn'] }, '/trust/keyring.asc']] },
      },
      {
        Effect: 'Allow',
        Action: 's3:DeleteObject',
        Resource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': [ids.mirror, 'Arn'] }, '/*']] },
      },
    ]);
    const queueStatements = statements.filter((s) => actionsOf(s).some((a) => a.startsWith('sqs:')));
    expect(queueStatements.flatMap(actionsOf)).not.toContain('sqs:ReceiveMessage');
    expect(queueStatements.every((s) => mentions(s, ids.queue) && !mentions(s, ids.dlq))).toBe(true);
  });

  it('lets the worker get, put, abort and delete objects in the mirror only, and nothing of the configs', () => {
    const statements = statementsOf(synth, 'Worker');
    const viaDynamoOnly = (s: Statement) => JSON.stringify(s.Condition ?? {}).includes('kms:ViaService');
    expect(
      statements.filter((s) => mentions(s, ids.config) || (mentions(s, ids.configKey) && !viaDynamoOnly(s))),
    ).toEqual([]);
    const objectStatement = only(
      statements.filter((s) => actionsOf(s).includes('s3:PutObject')),
      'worker object statement',
    );
    expect(actionsOf(objectStatement).sort()).toEqual([
      's3:AbortMultipartUpload',
      's3:DeleteObject',
      's3:GetObject',
      's3:PutObject',
    ]);
    expect(mentions(objectStatement, ids.mirror)).toBe(true);
    expect(
      statements
        .flatMap(actionsOf)
        .filter((a) => a.startsWith('sqs:'))
        .sort(),
    ).toEqual([
      'sqs:ChangeMessageVisibility',
      'sqs:DeleteMessage',
      'sqs:GetQueueAttributes',
      'sqs:GetQueueUrl',
      'sqs:ReceiveMessage',
    ]);
  });

  it('gives each function ledger access only to the table and its one index', () => {
    for (const prefix of ['Poller', 'Worker', 'ApiHandler']) {
      const ledger = only(
        statementsOf(synth, prefix).filter((s) => mentions(s, ids.table)),
        `${prefix} ledger statement`,
      );
      expect(ledger.Resource).toEqual([
        { 'Fn::GetAtt': [ids.table, 'Arn'] },
        { 'Fn::Join': ['', [{ 'Fn::GetAtt': [ids.table, 'Arn'] }, `/index/${ledgerKeySchema.gsi1Name}`]] },
      ]);
      expect(actionsOf(ledger)).not.toContain('dynamodb:Scan');
    }
  });
});
