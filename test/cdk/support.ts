import { join } from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { buildApp, stackName } from '../../cdk/build-app.ts';
import type { CldistStack } from '../../cdk/cldist-stack.ts';
import { projectRoot } from '../../shared/config.ts';
import { type IntrinsicScope, type PhysicalResource, resolveString } from '../deploy/harness/template.ts';

/** Bundling is skipped in assertion tests, so any existing file serves as the handler entry. */
export const fixtureEntry = join(projectRoot, 'test', 'cdk', 'fixtures', 'handler.ts');
export const fixtureEntries = { poller: fixtureEntry, worker: fixtureEntry, api: fixtureEntry };

export interface Synthesized {
  stack: CldistStack;
  template: Template;
  resources: Record<string, CfnResource>;
}

export interface CfnResource {
  Type: string;
  Properties?: Record<string, unknown>;
  Metadata?: Record<string, unknown>;
}

/**
 * Builds the app exactly as `cdk synth` does, cdk-nag included (a finding makes `synth` throw), without
 * bundling the handlers.
 */
let defaultSynth: Synthesized | undefined;

/** The default-settings stack, synthesized once per test file (cdk-nag makes a synth take seconds). */
export function synthesizeDefault(): Synthesized {
  defaultSynth ??= synthesize();
  return defaultSynth;
}

export function synthesize(context: Record<string, unknown> = {}): Synthesized {
  const { app, stack } = buildApp({
    context: { 'aws:cdk:bundling-stacks': [], 'cldist:config': {}, ...context },
    entries: fixtureEntries,
    cwd: projectRoot,
  });
  app.synth();
  const template = Template.fromStack(stack);
  const resources = template.toJSON().Resources as Record<string, CfnResource>;
  return { stack, template, resources };
}

export function logicalIdsOfType(resources: Record<string, CfnResource>, type: string): string[] {
  return Object.entries(resources)
    .filter(([, resource]) => resource.Type === type)
    .map(([id]) => id);
}

export function only<T>(items: T[], what: string): T {
  if (items.length !== 1 || items[0] === undefined) {
    throw new Error(`expected exactly one ${what}, found ${items.length}`);
  }
  return items[0];
}

/** The logical ID of the single resource of `type` whose ID starts with `prefix`. */
export function idOf(resources: Record<string, CfnResource>, type: string, prefix: string): string {
  return only(
    logicalIdsOfType(resources, type).filter((id) => id.startsWith(prefix)),
    `${type} named ${prefix}*`,
  );
}

const fakeAccount = '123456789012';
const fakeRegion = 'us-east-1';

/** Plausible names and ARNs for what the stack creates, by resource type, where nothing is stood up. */
function fakeResource(logicalId: string, type: string | undefined): PhysicalResource | undefined {
  const name = logicalId.toLowerCase();
  const service = type?.split('::')[1]?.toLowerCase() ?? 'unknown';
  const arn = (attribute: string) =>
    `arn:aws:${service}:${fakeRegion}:${fakeAccount}:${logicalId}/${attribute}`;
  const attributes = new Proxy<Record<string, string>>(
    {
      ApiEndpoint: 'https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com',
      DomainName: 'd111111abcdef8.cloudfront.net',
    },
    { get: (target, key) => (typeof key === 'string' ? (target[key] ?? arn(key)) : undefined) },
  );
  switch (type) {
    case 'AWS::S3::Bucket':
    case 'AWS::DynamoDB::Table':
      return { ref: `cldist-${name}`, attributes };
    case 'AWS::SNS::Topic':
      return { ref: `arn:aws:sns:${fakeRegion}:${fakeAccount}:${logicalId}`, attributes };
    case 'AWS::SQS::Queue':
      return { ref: `https://sqs.${fakeRegion}.amazonaws.com/${fakeAccount}/${logicalId}`, attributes };
    case 'AWS::SecretsManager::Secret':
      // Ref of a secret is its ARN, with the six random characters Secrets Manager appends.
      return {
        ref: `arn:aws:secretsmanager:${fakeRegion}:${fakeAccount}:secret:${logicalId}-AbCdEf`,
        attributes,
      };
    case 'AWS::ApiGatewayV2::Api':
      return { ref: 'a1b2c3d4e5', attributes };
    case undefined:
      return undefined;
    default:
      return { ref: logicalId, attributes };
  }
}

/**
 * Resolves the CloudFormation intrinsics used in environment variables with plausible values, so a test
 * can feed the deployed environment to the handlers' own parser. The deploy tests resolve the same way
 * to the stand-ins' real names (test/deploy/harness/template.ts).
 */
export function resolveIntrinsics(value: unknown, resources: Record<string, CfnResource>): string {
  const scope: IntrinsicScope = {
    region: fakeRegion,
    accountId: fakeAccount,
    stackName,
    resource: (logicalId) => fakeResource(logicalId, resources[logicalId]?.Type),
  };
  return resolveString(value, scope, 'template');
}

/** The Properties of a resource that must exist, so a wrong ID fails loudly instead of reading undefined. */
export function propertiesOf(
  resources: Record<string, CfnResource>,
  logicalId: string,
): Record<string, unknown> {
  const resource = resources[logicalId];
  if (resource === undefined) {
    throw new Error(`no resource ${logicalId} in the template`);
  }
  return resource.Properties ?? {};
}

/** The environment of the function whose logical ID starts with `prefix`, with intrinsics resolved. */
export function functionEnvironment(synth: Synthesized, prefix: string): Record<string, string> {
  const props = propertiesOf(synth.resources, idOf(synth.resources, 'AWS::Lambda::Function', prefix));
  const variables = (props.Environment as { Variables: Record<string, unknown> }).Variables;
  return Object.fromEntries(
    Object.entries(variables).map(([name, value]) => [name, resolveIntrinsics(value, synth.resources)]),
  );
}

/** The one metric an alarm watches, whichever of CloudFormation's two forms the alarm is written in. */
export interface AlarmedMetric {
  namespace: string;
  metricName: string;
  dimensions: { Name: string; Value: unknown }[];
  statistic: string;
  period: number;
}

interface MetricStat {
  Metric: { Namespace: string; MetricName: string; Dimensions?: { Name: string; Value: unknown }[] };
  Period: number;
  Stat: string;
}

/**
 * An alarm on one metric is written either with top-level `Namespace`/`MetricName` or, when the metric
 * carries a label, as a one-entry `Metrics` list; both watch the same data. An alarm on metric math has
 * no single metric and fails here, so a test never reads an expression as if it were a metric.
 */
export function alarmedMetric(alarm: Record<string, unknown>): AlarmedMetric {
  if (typeof alarm.MetricName === 'string' && typeof alarm.Namespace === 'string') {
    return {
      namespace: alarm.Namespace,
      metricName: alarm.MetricName,
      dimensions: (alarm.Dimensions as AlarmedMetric['dimensions'] | undefined) ?? [],
      statistic: String(alarm.Statistic ?? alarm.ExtendedStatistic),
      period: Number(alarm.Period),
    };
  }
  const queries = (alarm.Metrics as { MetricStat?: MetricStat; Expression?: string }[] | undefined) ?? [];
  const stat = only(queries, `metric query of alarm ${String(alarm.AlarmName)}`).MetricStat;
  if (stat === undefined) {
    throw new Error(`alarm ${String(alarm.AlarmName)} watches an expression, not one metric`);
  }
  return {
    namespace: stat.Metric.Namespace,
    metricName: stat.Metric.MetricName,
    dimensions: stat.Metric.Dimensions ?? [],
    statistic: stat.Stat,
    period: stat.Period,
  };
}
