import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseRuntimeEnv } from '../../shared/runtime-env.ts';
import {
  alarmedMetric,
  functionEnvironment,
  idOf,
  logicalIdsOfType,
  type Synthesized,
  synthesize,
} from './support.ts';

const certificateArn = 'arn:aws:acm:us-east-1:123456789012:certificate/0b5f7a3e-3c1e-4d57-9b8a-6a0c2c0e9f11';
const subscriberQueue = 'arn:aws:sqs:eu-west-1:210987654321:flatcar-releases';

const context = {
  'cldist:config': {
    schedule: { everyMinutes: 5 },
    limits: { maxArtifactBytes: 2 * 1024 ** 3 },
    store: { kind: 's3', bucket: 'ignored-in-aws', prefix: 'mirror/' },
  },
  'cldist:deploy': {
    subscriptions: [
      {
        protocol: 'email',
        endpoint: 'ops@example.com',
        filter: { event: ['release.mirrored'], channel: ['stable'] },
      },
      { protocol: 'https', endpoint: 'https://hooks.example.com/cldist' },
      { protocol: 'sqs', endpoint: subscriberQueue, filter: { board: ['arm64-usr'] } },
    ],
    worker: { maxConcurrency: 7, minThroughputMBps: 100 },
    api: { domainName: 'ignition.example.com', certificateArn },
    mirror: { cloudFront: true, accessLogs: true, trustKeyringKey: 'keys/extra.asc' },
    alarms: { email: 'oncall@example.com', api5xxPerFiveMinutes: 3 },
    logRetentionDays: 30,
  },
};

function environmentOf(synth: Synthesized, prefix: string) {
  return parseRuntimeEnv(functionEnvironment(synth, prefix));
}

describe('the CDK stack with every deployment option set', () => {
  let synth: Synthesized;
  beforeAll(() => {
    synth = synthesize(context);
  });

  it('takes schedule, worker concurrency and sizing from the settings', () => {
    synth.template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(5 minutes)' });
    synth.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      ScalingConfig: { MaximumConcurrency: 7 },
    });
    const worker = synth.resources[idOf(synth.resources, 'AWS::Lambda::Function', 'Worker')]?.Properties;
    expect(worker?.Timeout).toBe(Math.ceil(((2 * 1024 ** 3) / 100e6) * 2 + 60));
    synth.template.hasResourceProperties('AWS::SQS::Queue', {
      VisibilityTimeout: 6 * (worker?.Timeout as number),
    });
    synth.template.allResourcesProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
  });

  it('subscribes the configured endpoints with their filter policies on the message attributes', () => {
    const events = idOf(synth.resources, 'AWS::SNS::Topic', 'EventsTopic');
    const operator = idOf(synth.resources, 'AWS::SNS::Topic', 'OperatorTopic');
    synth.template.hasResourceProperties('AWS::SNS::Subscription', {
      TopicArn: { Ref: events },
      Protocol: 'email',
      Endpoint: 'ops@example.com',
      FilterPolicy: { event: ['release.mirrored'], channel: ['stable'] },
    });
    synth.template.hasResourceProperties('AWS::SNS::Subscription', {
      TopicArn: { Ref: events },
      Protocol: 'https',
      Endpoint: 'https://hooks.example.com/cldist',
      FilterPolicy: Match.absent(),
    });
    synth.template.hasResourceProperties('AWS::SNS::Subscription', {
      TopicArn: { Ref: events },
      Protocol: 'sqs',
      Endpoint: subscriberQueue,
      RawMessageDelivery: true,
      FilterPolicy: { board: ['arm64-usr'] },
    });
    synth.template.hasResourceProperties('AWS::SNS::Subscription', {
      TopicArn: { Ref: operator },
      Protocol: 'email',
      Endpoint: 'oncall@example.com',
    });
    synth.template.resourceCountIs('AWS::SNS::Subscription', 4);
  });

  it('serves the API on the custom domain with TLS 1.2 and tells the function its public URL', () => {
    synth.template.hasResourceProperties('AWS::ApiGatewayV2::DomainName', {
      DomainName: 'ignition.example.com',
      DomainNameConfigurations: [
        Match.objectLike({
          CertificateArn: certificateArn,
          SecurityPolicy: 'TLS_1_2',
          EndpointType: 'REGIONAL',
        }),
      ],
    });
    synth.template.resourceCountIs('AWS::ApiGatewayV2::ApiMapping', 1);
    synth.template.hasResourceProperties('AWS::ApiGatewayV2::Api', { DisableExecuteApiEndpoint: true });
    expect(environmentOf(synth, 'ApiHandler').config.api.publicBaseUrl).toBe('https://ignition.example.com');
    expect(Object.keys(synth.template.toJSON().Outputs as object)).toContain('ApiDomainTarget');
    const api5xx = logicalIdsOfType(synth.resources, 'AWS::CloudWatch::Alarm')
      .map((id) => synth.resources[id]?.Properties ?? {})
      .filter((alarm) => alarmedMetric(alarm).metricName === '5xx');
    expect(api5xx).toEqual([expect.objectContaining({ Threshold: 3 })]);
  });

  it('fronts the still-private mirror bucket with CloudFront through origin access control', () => {
    const mirror = idOf(synth.resources, 'AWS::S3::Bucket', 'MirrorBucket');
    synth.template.resourceCountIs('AWS::CloudFront::OriginAccessControl', 1);
    synth.template.hasResourceProperties('AWS::CloudFront::Distribution', {
      DistributionConfig: Match.objectLike({
        DefaultCacheBehavior: Match.objectLike({ ViewerProtocolPolicy: 'redirect-to-https' }),
        Origins: [Match.objectLike({ OriginAccessControlId: Match.anyValue() })],
      }),
    });
    synth.template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: mirror },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Allow',
            Principal: { Service: 'cloudfront.amazonaws.com' },
            Action: 's3:GetObject',
          }),
        ]),
      },
    });
    synth.template.hasResourceProperties('AWS::S3::Bucket', {
      PublicAccessBlockConfiguration: Match.objectLike({
        BlockPublicPolicy: true,
        RestrictPublicBuckets: true,
      }),
    });
    expect(Object.keys(synth.template.toJSON().Outputs as object)).toContain('MirrorUrl');
  });

  it('roots the distribution at the store prefix, so MirrorUrl/{channel}/{board} is a release folder', () => {
    synth.template.hasResourceProperties('AWS::CloudFront::Distribution', {
      DistributionConfig: Match.objectLike({ Origins: [Match.objectLike({ OriginPath: '/mirror' })] }),
    });
  });

  it('writes server access logs of both buckets into a private log bucket', () => {
    const buckets = logicalIdsOfType(synth.resources, 'AWS::S3::Bucket');
    expect(buckets).toHaveLength(3);
    const logs = idOf(synth.resources, 'AWS::S3::Bucket', 'AccessLogsBucket');
    for (const [prefix, logPrefix] of [
      ['MirrorBucket', 'mirror/'],
      ['ConfigBucket', 'config/'],
    ] as const) {
      const bucket = synth.resources[idOf(synth.resources, 'AWS::S3::Bucket', prefix)];
      expect(bucket?.Properties?.LoggingConfiguration).toEqual({
        DestinationBucketName: { Ref: logs },
        LogFilePrefix: logPrefix,
      });
    }
  });

  it('keeps the store prefix, forces the stack mirror bucket, and points functions at the trust object', () => {
    const worker = environmentOf(synth, 'Worker');
    expect(worker.config.store).toMatchObject({ kind: 's3', prefix: 'mirror/' });
    expect(worker.config.store).not.toMatchObject({ bucket: 'ignored-in-aws' });
    expect(worker.resources.trustKeyringKey).toBe('keys/extra.asc');
    const poller = synth.resources[idOf(synth.resources, 'AWS::IAM::Policy', 'PollerRoleDefaultPolicy')];
    expect(JSON.stringify(poller?.Properties?.PolicyDocument)).toContain('/mirror/keys/extra.asc');
    const worker_ = synth.resources[idOf(synth.resources, 'AWS::IAM::Policy', 'WorkerRoleDefaultPolicy')];
    expect(JSON.stringify(worker_?.Properties?.PolicyDocument)).toContain('"/mirror/*"');
    expect(JSON.stringify(worker_?.Properties?.PolicyDocument)).not.toContain('"/*"');
  });
});

describe('the CDK stack with CloudFront turned off', () => {
  it('has no distribution, no mirror URL, and still passes cdk-nag', () => {
    const synth = synthesize({ 'cldist:deploy': { mirror: { cloudFront: false } } });
    synth.template.resourceCountIs('AWS::CloudFront::Distribution', 0);
    synth.template.resourceCountIs('AWS::CloudFront::OriginAccessControl', 0);
    expect(Object.keys(synth.template.toJSON().Outputs as object)).not.toContain('MirrorUrl');
    expect(Object.keys(synth.template.toJSON().Outputs as object)).toContain('MirrorBucketName');
  });
});
