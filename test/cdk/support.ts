import { join } from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../../cdk/build-app.ts';
import type { CldistStack } from '../../cdk/cldist-stack.ts';
import { projectRoot } from '../../shared/config.ts';

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

/**
 * Resolves the CloudFormation intrinsics used in environment variables with plausible values, so a test
 * can feed the deployed environment to the handlers' own parser.
 */
export function resolveIntrinsics(value: unknown, resources: Record<string, CfnResource>): string {
  if (typeof value === 'string') {
    return value;
  }
  if (typeof value !== 'object' || value === null) {
    throw new Error(`cannot resolve ${JSON.stringify(value)}`);
  }
  const record = value as Record<string, unknown>;
  if ('Fn::Join' in record) {
    const [separator, parts] = record['Fn::Join'] as [string, unknown[]];
    return parts.map((part) => resolveIntrinsics(part, resources)).join(separator);
  }
  if ('Ref' in record) {
    const ref = record.Ref as string;
    const pseudo: Record<string, string> = {
      'AWS::Region': 'us-east-1',
      'AWS::URLSuffix': 'amazonaws.com',
      'AWS::AccountId': fakeAccount,
      'AWS::Partition': 'aws',
    };
    if (pseudo[ref] !== undefined) {
      return pseudo[ref];
    }
    const type = resources[ref]?.Type;
    const name = ref.toLowerCase();
    switch (type) {
      case 'AWS::S3::Bucket':
      case 'AWS::DynamoDB::Table':
        return `cldist-${name}`;
      case 'AWS::SNS::Topic':
        return `arn:aws:sns:us-east-1:${fakeAccount}:${ref}`;
      case 'AWS::SQS::Queue':
        return `https://sqs.us-east-1.amazonaws.com/${fakeAccount}/${ref}`;
      case 'AWS::SecretsManager::Secret':
        // Ref of a secret is its ARN, with the six random characters Secrets Manager appends.
        return `arn:aws:secretsmanager:us-east-1:${fakeAccount}:secret:${ref}-AbCdEf`;
      case 'AWS::ApiGatewayV2::Api':
        return 'a1b2c3d4e5';
      default:
        throw new Error(`no fake value for Ref ${ref} (${type})`);
    }
  }
  if ('Fn::GetAtt' in record) {
    const [ref, attribute] = record['Fn::GetAtt'] as [string, string];
    if (attribute === 'ApiEndpoint') {
      return 'https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com';
    }
    const type = resources[ref]?.Type ?? 'unknown';
    const service = type.split('::')[1]?.toLowerCase() ?? 'unknown';
    return `arn:aws:${service}:us-east-1:${fakeAccount}:${ref}/${attribute}`;
  }
  throw new Error(`cannot resolve ${JSON.stringify(value)}`);
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
