import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { PublishCommand } from '@aws-sdk/client-sns';
import { GetQueueAttributesCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deployment } from './harness/deployment.ts';
import { deployStack } from './harness/fixture.ts';
import { type IntrinsicScope, resolveValue } from './harness/template.ts';

/** The stand-ins are made from the template's own properties, so the tests exercise what deploys. */
describe('stand-ins built from the template', () => {
  let deployment: Deployment;
  const props = (path: string) => deployment.template.Resources[deployment.logicalId(path)]?.Properties ?? {};

  beforeAll(async () => {
    deployment = await deployStack({
      // What `cldist:deploy.subscriptions` adds for an SQS subscriber with a filter: its queue is outside
      // the stack on AWS, inside the template here so the stand-ins create it.
      editTemplate: (template) => {
        template.Resources.ImportQueue = { Type: 'AWS::SQS::Queue', Properties: {} };
        const topic = Object.entries(template.Resources).find(
          ([, r]) => r.Metadata?.['aws:cdk:path'] === 'Cldist/Events/Topic/Resource',
        )?.[0];
        template.Resources.ImportSubscription = {
          Type: 'AWS::SNS::Subscription',
          Properties: {
            Protocol: 'sqs',
            TopicArn: { Ref: topic },
            Endpoint: { 'Fn::GetAtt': ['ImportQueue', 'Arn'] },
            RawMessageDelivery: true,
            FilterPolicy: { event: ['release.mirrored'] },
          },
        };
      },
    });
  });
  afterAll(() => deployment?.close());

  it('creates the table with the key schema and indexes the template declares', async () => {
    const table = props('Ledger');
    const described = await deployment.clients.dynamodb.send(
      new DescribeTableCommand({ TableName: deployment.ref('Ledger') }),
    );
    expect(described.Table?.KeySchema).toEqual(table.KeySchema);
    expect(
      described.Table?.GlobalSecondaryIndexes?.map((index) => ({
        IndexName: index.IndexName,
        KeySchema: index.KeySchema,
        Projection: index.Projection,
      })),
    ).toEqual(table.GlobalSecondaryIndexes);
  });

  it('creates the job queue with its visibility timeout and redrive policy to the dead-letter queue', async () => {
    const queue = props('Jobs/Queue');
    const got = await deployment.clients.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: deployment.ref('Jobs/Queue'), AttributeNames: ['All'] }),
    );
    expect(got.Attributes?.VisibilityTimeout).toBe(String(queue.VisibilityTimeout));
    expect(got.Attributes?.MessageRetentionPeriod).toBe(String(queue.MessageRetentionPeriod));
    expect(JSON.parse(got.Attributes?.RedrivePolicy ?? '{}')).toEqual({
      deadLetterTargetArn: deployment.attribute('Jobs/DeadLetter', 'Arn'),
      maxReceiveCount: (queue.RedrivePolicy as { maxReceiveCount: number }).maxReceiveCount,
    });
  });

  it('subscribes with the filter policy and raw delivery the template declares', async () => {
    const topicArn = deployment.ref('Events/Topic');
    for (const event of ['artifact.missing', 'release.mirrored']) {
      await deployment.clients.sns.send(
        new PublishCommand({
          TopicArn: topicArn,
          Message: JSON.stringify({ event }),
          MessageAttributes: { event: { DataType: 'String', StringValue: event } },
        }),
      );
    }
    const got = await deployment.clients.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: deployment.ref('ImportQueue'),
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
      }),
    );
    expect(got.Messages?.map((m) => m.Body)).toEqual([JSON.stringify({ event: 'release.mirrored' })]);
  });

  it('says which template properties the stand-ins cannot honour, rather than dropping them silently', async () => {
    const withTtl = await deployStack({
      editTemplate: (template) => {
        const ledger = Object.values(template.Resources).find((r) => r.Type === 'AWS::DynamoDB::Table');
        if (ledger?.Properties === undefined) throw new Error('no table in the template');
        ledger.Properties.TimeToLiveSpecification = { AttributeName: 'expiresAt', Enabled: true };
      },
    });
    await withTtl.close();
    expect(withTtl.standIns.notApplied).toEqual([
      expect.stringMatching(/Cldist\/Ledger: TimeToLiveSpecification on expiresAt \(dynalite has no TTL\)/),
    ]);
    // The audit entries' TTL is the one property of the real template dynalite cannot honour; the
    // repository's contract tests cover what it is for (the TTL value written, the by-day removal).
    expect(deployment.standIns.notApplied).toEqual([
      expect.stringMatching(/^Cldist\/Ledger: TimeToLiveSpecification on ttl \(dynalite has no TTL\)$/),
    ]);
  });

  it('resolves every intrinsic in the functions’ environments to the stand-ins’ values', () => {
    for (const fn of deployment.functions) {
      const env = deployment.templateEnvironment(fn);
      expect(Object.keys(env).sort()).toEqual(Object.keys(fn.environment).sort());
      const resources = JSON.parse(env.CLDIST_RESOURCES ?? '{}') as Record<string, string>;
      expect(resources.tableName).toBe(deployment.ref('Ledger'));
    }
  });
});

describe('intrinsic functions', () => {
  const scope: IntrinsicScope = {
    region: 'eu-west-1',
    accountId: '000000000000',
    stackName: 'Cldist',
    resource: (id) =>
      id === 'Bucket' ? { ref: 'bucket-1', attributes: { Arn: 'arn:aws:s3:::bucket-1' } } : undefined,
  };

  it('resolves Fn::Sub with pseudo parameters, references, attributes and its own variables', () => {
    expect(
      resolveValue(
        {
          'Fn::Sub': [
            // biome-ignore lint/suspicious/noTemplateCurlyInString: Fn::Sub's own placeholder syntax.
            '${Bucket}|${Bucket.Arn}|${AWS::Region}|${Own}|${!Literal}',
            { Own: { Ref: 'Bucket' } },
          ],
        },
        scope,
        'test',
      ),
      // biome-ignore lint/suspicious/noTemplateCurlyInString: `${!Literal}` yields a literal `${Literal}`.
    ).toBe('bucket-1|arn:aws:s3:::bucket-1|eu-west-1|bucket-1|${Literal}');
  });

  it('resolves Fn::Select over Fn::Split', () => {
    expect(
      resolveValue({ 'Fn::Select': [5, { 'Fn::Split': [':', { 'Fn::GetAtt': 'Bucket.Arn' }] }] }, scope, 't'),
    ).toBe('bucket-1');
  });

  it('names an unknown resource and an unsupported intrinsic with where they were found', () => {
    expect(() => resolveValue({ Ref: 'Missing' }, scope, 'Fn env X')).toThrow(
      /Fn env X: Ref to Missing, which is not a stood-up resource/,
    );
    expect(() => resolveValue({ 'Fn::ImportValue': 'Shared' }, scope, 'Fn env Y')).toThrow(
      /Fn env Y: Fn::ImportValue is not supported/,
    );
  });
});
