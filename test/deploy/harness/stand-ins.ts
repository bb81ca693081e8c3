import { randomBytes, randomUUID } from 'node:crypto';
import {
  type AttributeDefinition,
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  type GlobalSecondaryIndex,
  type KeySchemaElement,
  type LocalSecondaryIndex,
} from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import {
  CreateSecretCommand,
  GetRandomPasswordCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { CreateTopicCommand, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import type { AwsClients } from '../../../shared/aws-clients.ts';
import {
  type CfnTemplate,
  constructName,
  type IntrinsicScope,
  type PhysicalResource,
  resolveString,
  resolveValue,
  type TemplateResource,
} from './template.ts';

/**
 * Types that have no behaviour a function can observe on the stand-ins: permissions, logs, alarms,
 * encryption keys (the emulators do not encrypt), and the wiring the harness reads itself (event source
 * mappings, the schedule, API routes). They still answer `Ref` and `Fn::GetAtt` with plausible values.
 */
const inertTypes = new Set([
  'AWS::ApiGatewayV2::Api',
  'AWS::ApiGatewayV2::ApiMapping',
  'AWS::ApiGatewayV2::DomainName',
  'AWS::ApiGatewayV2::Integration',
  'AWS::ApiGatewayV2::Route',
  'AWS::ApiGatewayV2::Stage',
  'AWS::CDK::Metadata',
  'AWS::CloudFront::CachePolicy',
  'AWS::CloudFront::Distribution',
  'AWS::CloudFront::OriginAccessControl',
  'AWS::CloudWatch::Alarm',
  'AWS::CloudWatch::Dashboard',
  'AWS::Events::Rule',
  'AWS::IAM::Policy',
  'AWS::IAM::Role',
  'AWS::KMS::Alias',
  'AWS::KMS::Key',
  'AWS::Lambda::EventInvokeConfig',
  'AWS::Lambda::EventSourceMapping',
  'AWS::Lambda::Function',
  'AWS::Lambda::Permission',
  'AWS::Logs::LogGroup',
  'AWS::S3::BucketPolicy',
  'AWS::SNS::TopicPolicy',
  'AWS::SQS::QueuePolicy',
]);

/** Types created on fauxqs or dynalite from their template properties. */
const createdTypes = [
  'AWS::DynamoDB::Table',
  'AWS::S3::Bucket',
  'AWS::SNS::Topic',
  'AWS::SQS::Queue',
  'AWS::SNS::Subscription',
  'AWS::SecretsManager::Secret',
] as const;

export class UnsupportedResourceError extends Error {
  override name = 'UnsupportedResourceError';
}

/** What was stood up, and what of the template could not be reproduced on the stand-ins. */
export interface StandIns {
  scope: IntrinsicScope;
  physical: Map<string, PhysicalResource>;
  /** Properties the stand-ins cannot honour (e.g. DynamoDB TTL on dynalite), one line each. */
  notApplied: string[];
}

export interface StandInOptions {
  clients: AwsClients;
  /** moto's Secrets Manager (see secrets-manager.ts). */
  secretsManagerEndpoint: string;
  region: string;
  stackName: string;
}

/** Lower-case, short, unique per deployment: several deployments share one emulator in a test run. */
function physicalName(logicalId: string, suffix: string, maxLength: number): string {
  const base = logicalId
    .replace(/[0-9A-F]{8}$/, '')
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-');
  return `${base.slice(0, maxLength - suffix.length - 1)}-${suffix}`;
}

function inertResource(
  logicalId: string,
  resource: TemplateResource,
  account: string,
  region: string,
): PhysicalResource {
  const service = resource.Type.split('::')[1]?.toLowerCase() ?? 'unknown';
  switch (resource.Type) {
    case 'AWS::KMS::Key': {
      const id = randomUUID();
      return { ref: id, attributes: { Arn: `arn:aws:kms:${region}:${account}:key/${id}`, KeyId: id } };
    }
    case 'AWS::ApiGatewayV2::Api': {
      const id = randomBytes(5).toString('hex');
      return {
        ref: id,
        attributes: { ApiId: id, ApiEndpoint: `https://${id}.execute-api.${region}.amazonaws.com` },
      };
    }
    case 'AWS::Lambda::Function':
      return {
        ref: logicalId,
        attributes: { Arn: `arn:aws:lambda:${region}:${account}:function:${logicalId}` },
      };
    case 'AWS::CloudFront::Distribution': {
      // The API names it in Omaha answers only; no test downloads through it.
      const id = `d${randomBytes(6).toString('hex')}`;
      return { ref: id.toUpperCase(), attributes: { DomainName: `${id}.cloudfront.net` } };
    }
    default:
      return {
        ref: logicalId,
        attributes: { Arn: `arn:aws:${service}:${region}:${account}:${logicalId}` },
      };
  }
}

async function tableActive(clients: AwsClients, table: string): Promise<string> {
  // dynalite answers CreateTable before the table is ACTIVE; the SDK waiter would sleep 20 s first.
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const out = await clients.dynamodb.send(new DescribeTableCommand({ TableName: table }));
    if (out.Table?.TableStatus === 'ACTIVE') return out.Table.TableArn ?? '';
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error(`table ${table} did not become ACTIVE within 10 s`);
}

async function createTable(
  name: string,
  props: Record<string, unknown>,
  options: StandInOptions,
  notApplied: string[],
  label: string,
): Promise<PhysicalResource> {
  const onDemand = props.BillingMode === 'PAY_PER_REQUEST';
  const throughput = onDemand ? undefined : { ReadCapacityUnits: 5, WriteCapacityUnits: 5 };
  const input: CreateTableCommandInput = {
    TableName: name,
    AttributeDefinitions: props.AttributeDefinitions as AttributeDefinition[],
    KeySchema: props.KeySchema as KeySchemaElement[],
    BillingMode: onDemand ? 'PAY_PER_REQUEST' : 'PROVISIONED',
    ProvisionedThroughput: throughput,
    GlobalSecondaryIndexes: (props.GlobalSecondaryIndexes as GlobalSecondaryIndex[] | undefined)?.map(
      (index) => ({ ...index, ProvisionedThroughput: throughput }),
    ),
    LocalSecondaryIndexes: props.LocalSecondaryIndexes as LocalSecondaryIndex[] | undefined,
  };
  await options.clients.dynamodb.send(new CreateTableCommand(input));
  const arn = await tableActive(options.clients, name);
  const ttl = props.TimeToLiveSpecification as { AttributeName?: string; Enabled?: boolean } | undefined;
  if (ttl?.Enabled === true) {
    // dynalite implements DescribeTimeToLive but not UpdateTimeToLive, and never expires items.
    notApplied.push(`${label}: TimeToLiveSpecification on ${ttl.AttributeName} (dynalite has no TTL)`);
  }
  if (props.StreamSpecification !== undefined) {
    notApplied.push(`${label}: StreamSpecification (dynalite has no streams)`);
  }
  return { ref: name, attributes: { Arn: arn } };
}

/** SQS attributes the emulator honours; encryption settings have no observable effect there. */
const queueAttributes = [
  'DelaySeconds',
  'MaximumMessageSize',
  'MessageRetentionPeriod',
  'ReceiveMessageWaitTimeSeconds',
  'VisibilityTimeout',
  'FifoQueue',
  'ContentBasedDeduplication',
] as const;

async function createQueue(
  name: string,
  props: Record<string, unknown>,
  options: StandInOptions,
  scope: IntrinsicScope,
  label: string,
): Promise<PhysicalResource> {
  const attributes: Record<string, string> = {};
  for (const key of queueAttributes) {
    if (props[key] !== undefined) attributes[key] = String(props[key]);
  }
  if (props.RedrivePolicy !== undefined) {
    attributes.RedrivePolicy = JSON.stringify(
      resolveValue(props.RedrivePolicy, scope, `${label}.RedrivePolicy`),
    );
  }
  const queueName = props.FifoQueue === true ? `${name}.fifo` : name;
  const created = await options.clients.sqs.send(
    new CreateQueueCommand({ QueueName: queueName, Attributes: attributes }),
  );
  const url = created.QueueUrl ?? '';
  const got = await options.clients.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }),
  );
  const arn = got.Attributes?.QueueArn ?? '';
  return { ref: url, attributes: { Arn: arn, QueueUrl: url, QueueName: queueName } };
}

async function subscribe(
  props: Record<string, unknown>,
  options: StandInOptions,
  scope: IntrinsicScope,
  notApplied: string[],
  label: string,
): Promise<PhysicalResource> {
  const protocol = resolveString(props.Protocol, scope, `${label}.Protocol`);
  const endpoint = resolveString(props.Endpoint, scope, `${label}.Endpoint`);
  if (protocol !== 'sqs') {
    // Nothing on this machine receives e-mail or SNS HTTPS deliveries.
    notApplied.push(`${label}: ${protocol} subscription to ${endpoint} (fauxqs delivers only to SQS)`);
    return { ref: `${label}-not-subscribed`, attributes: {} };
  }
  const attributes: Record<string, string> = {};
  if (props.RawMessageDelivery !== undefined)
    attributes.RawMessageDelivery = String(props.RawMessageDelivery);
  if (props.FilterPolicy !== undefined) {
    attributes.FilterPolicy = JSON.stringify(
      resolveValue(props.FilterPolicy, scope, `${label}.FilterPolicy`),
    );
  }
  if (props.FilterPolicyScope !== undefined) attributes.FilterPolicyScope = String(props.FilterPolicyScope);
  const out = await options.clients.sns.send(
    new SubscribeCommand({
      TopicArn: resolveString(props.TopicArn, scope, `${label}.TopicArn`),
      Protocol: protocol,
      Endpoint: endpoint,
      Attributes: attributes,
      ReturnSubscriptionArn: true,
    }),
  );
  return { ref: out.SubscriptionArn ?? '', attributes: {} };
}

/** Queues with a redrive policy after the queues they name, so their ARNs can be resolved. */
function creationOrder(template: CfnTemplate): [string, TemplateResource][] {
  const rank = (resource: TemplateResource): number => {
    const index = createdTypes.indexOf(resource.Type as (typeof createdTypes)[number]);
    const redrive = resource.Type === 'AWS::SQS::Queue' && resource.Properties?.RedrivePolicy !== undefined;
    return index * 2 + (redrive ? 1 : 0);
  };
  return Object.entries(template.Resources)
    .filter(([, resource]) => createdTypes.includes(resource.Type as (typeof createdTypes)[number]))
    .sort(([, a], [, b]) => rank(a) - rank(b));
}

/**
 * Stands up every table, bucket, topic, queue and subscription the template declares, from the template's
 * own properties (key schema and indexes, queue visibility and redrive policy, subscription filter policy
 * and raw delivery), and gives every other resource the `Ref` and `Fn::GetAtt` values a function could be
 * handed. A resource type the harness does not know fails here, naming it.
 */
/**
 * A secret made as CloudFormation makes one: with `GenerateSecretString`, the service generates the value
 * from the template's own rules (length, excluded characters), so nobody sees it at deploy time.
 */
async function createSecret(
  name: string,
  props: Record<string, unknown>,
  options: StandInOptions,
  label: string,
): Promise<PhysicalResource> {
  const client = new SecretsManagerClient({
    endpoint: options.secretsManagerEndpoint,
    region: options.region,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  try {
    const rules = (props.GenerateSecretString ?? {}) as Record<string, unknown>;
    if (typeof props.SecretString !== 'string' && props.GenerateSecretString === undefined) {
      throw new UnsupportedResourceError(
        `${label}: a secret with neither SecretString nor GenerateSecretString`,
      );
    }
    const value =
      typeof props.SecretString === 'string'
        ? props.SecretString
        : (
            await client.send(
              new GetRandomPasswordCommand({
                ...(typeof rules.PasswordLength === 'number' ? { PasswordLength: rules.PasswordLength } : {}),
                ...(typeof rules.ExcludePunctuation === 'boolean'
                  ? { ExcludePunctuation: rules.ExcludePunctuation }
                  : {}),
                ...(typeof rules.IncludeSpace === 'boolean' ? { IncludeSpace: rules.IncludeSpace } : {}),
                ...(typeof rules.RequireEachIncludedType === 'boolean'
                  ? { RequireEachIncludedType: rules.RequireEachIncludedType }
                  : {}),
              }),
            )
          ).RandomPassword;
    const created = await client.send(
      new CreateSecretCommand({
        Name: name,
        SecretString: value,
        ...(typeof props.Description === 'string' ? { Description: props.Description } : {}),
      }),
    );
    const arn = created.ARN ?? '';
    return { ref: arn, attributes: { Id: arn } };
  } finally {
    client.destroy();
  }
}

export async function standUp(template: CfnTemplate, options: StandInOptions): Promise<StandIns> {
  for (const [logicalId, resource] of Object.entries(template.Resources)) {
    const known = inertTypes.has(resource.Type) || createdTypes.some((type) => type === resource.Type);
    if (!known) {
      throw new UnsupportedResourceError(
        `the template declares ${resource.Type} (${constructName(logicalId, resource)}), which the deploy ` +
          'harness cannot stand up. Add it to test/deploy/harness/stand-ins.ts: create it on an emulator, or ' +
          'list it as inert if no function calls it at run time.',
      );
    }
  }
  const suffix = randomBytes(4).toString('hex');
  const physical = new Map<string, PhysicalResource>();
  const notApplied: string[] = [];
  const scope: IntrinsicScope = {
    region: options.region,
    // fauxqs puts this account in every ARN it makes; the template's own ARNs must agree with them.
    accountId: '000000000000',
    stackName: options.stackName,
    resource: (logicalId) => physical.get(logicalId),
  };
  for (const [logicalId, resource] of Object.entries(template.Resources)) {
    if (inertTypes.has(resource.Type)) {
      physical.set(logicalId, inertResource(logicalId, resource, scope.accountId, scope.region));
    }
  }
  for (const [logicalId, resource] of creationOrder(template)) {
    const props = resource.Properties ?? {};
    const label = constructName(logicalId, resource);
    switch (resource.Type) {
      case 'AWS::DynamoDB::Table':
        physical.set(
          logicalId,
          await createTable(
            typeof props.TableName === 'string' ? props.TableName : physicalName(logicalId, suffix, 80),
            props,
            options,
            notApplied,
            label,
          ),
        );
        break;
      case 'AWS::S3::Bucket': {
        const bucket =
          typeof props.BucketName === 'string' ? props.BucketName : physicalName(logicalId, suffix, 63);
        await options.clients.s3.send(new CreateBucketCommand({ Bucket: bucket }));
        physical.set(logicalId, {
          ref: bucket,
          attributes: {
            Arn: `arn:aws:s3:::${bucket}`,
            DomainName: `${bucket}.s3.amazonaws.com`,
            RegionalDomainName: `${bucket}.s3.${options.region}.amazonaws.com`,
          },
        });
        break;
      }
      case 'AWS::SNS::Topic': {
        const created = await options.clients.sns.send(
          new CreateTopicCommand({
            Name:
              typeof props.TopicName === 'string' ? props.TopicName : physicalName(logicalId, suffix, 256),
          }),
        );
        const arn = created.TopicArn ?? '';
        physical.set(logicalId, {
          ref: arn,
          attributes: { TopicArn: arn, TopicName: arn.split(':').pop() ?? '' },
        });
        break;
      }
      case 'AWS::SQS::Queue':
        physical.set(
          logicalId,
          await createQueue(
            typeof props.QueueName === 'string' ? props.QueueName : physicalName(logicalId, suffix, 75),
            props,
            options,
            scope,
            label,
          ),
        );
        break;
      case 'AWS::SNS::Subscription':
        physical.set(logicalId, await subscribe(props, options, scope, notApplied, label));
        break;
      case 'AWS::SecretsManager::Secret':
        physical.set(
          logicalId,
          await createSecret(physicalName(logicalId, suffix, 256), props, options, label),
        );
        break;
    }
  }
  return { scope, physical, notApplied };
}
