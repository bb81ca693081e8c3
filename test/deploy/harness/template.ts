import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** One resource of a synthesized CloudFormation template. */
export interface TemplateResource {
  Type: string;
  Properties?: Record<string, unknown>;
  Metadata?: Record<string, unknown>;
  DependsOn?: string | string[];
}

export interface CfnTemplate {
  Resources: Record<string, TemplateResource>;
}

/** Where `buildApp` wrote the cloud assembly, and the template inside it. */
export interface SynthesizedAssembly {
  outdir: string;
  templateFile: string;
}

/** A Lambda function as the template declares it, with its bundle located in the assembly. */
export interface TemplateFunction {
  logicalId: string;
  /** The construct path (`Cldist/Worker`), which names the function in messages. */
  name: string;
  handler: string;
  runtime: string;
  /** The unpacked asset directory: what Lambda extracts into /var/task. */
  assetDir: string;
  environment: Record<string, unknown>;
  timeoutSeconds: number;
  memoryMiB: number;
}

export function readTemplate(assembly: SynthesizedAssembly): CfnTemplate {
  const template = JSON.parse(readFileSync(assembly.templateFile, 'utf8')) as Partial<CfnTemplate>;
  if (template.Resources === undefined) {
    throw new Error(`${assembly.templateFile} has no Resources`);
  }
  return { Resources: template.Resources };
}

/** `Cldist/Worker/Resource` → `Cldist/Worker`; the logical ID when the path is missing. */
export function constructName(logicalId: string, resource: TemplateResource): string {
  const path = resource.Metadata?.['aws:cdk:path'];
  return typeof path === 'string' ? path.replace(/\/Resource$/, '') : logicalId;
}

export function resourcesOfType(template: CfnTemplate, type: string): [string, TemplateResource][] {
  return Object.entries(template.Resources).filter(([, resource]) => resource.Type === type);
}

/**
 * Every function with its asset directory. The template names the code by its S3 key (`<hash>.zip`);
 * the assembly holds the same asset unpacked as `asset.<hash>`.
 */
export function templateFunctions(template: CfnTemplate, assembly: SynthesizedAssembly): TemplateFunction[] {
  return resourcesOfType(template, 'AWS::Lambda::Function').map(([logicalId, resource]) => {
    const props = resource.Properties ?? {};
    const name = constructName(logicalId, resource);
    const key = (props.Code as { S3Key?: unknown } | undefined)?.S3Key;
    if (typeof key !== 'string') {
      throw new Error(`function ${name} has no Code.S3Key: only bundled (asset) functions are supported`);
    }
    const assetDir = join(assembly.outdir, `asset.${key.replace(/\.zip$/, '')}`);
    if (!existsSync(assetDir)) {
      throw new Error(`function ${name}: its asset ${assetDir} is not in the cloud assembly`);
    }
    const variables = (props.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables;
    return {
      logicalId,
      name,
      handler: String(props.Handler ?? ''),
      runtime: String(props.Runtime ?? ''),
      assetDir,
      environment: variables ?? {},
      timeoutSeconds: Number(props.Timeout ?? 3),
      memoryMiB: Number(props.MemorySize ?? 128),
    };
  });
}

/** What a stood-up resource answers to `Ref` and `Fn::GetAtt`. */
export interface PhysicalResource {
  ref: string;
  attributes: Record<string, string>;
}

export interface IntrinsicScope {
  region: string;
  accountId: string;
  stackName: string;
  resource(logicalId: string): PhysicalResource | undefined;
}

function pseudoParameter(name: string, scope: IntrinsicScope): string | undefined {
  const values: Record<string, string> = {
    'AWS::Region': scope.region,
    'AWS::AccountId': scope.accountId,
    'AWS::Partition': 'aws',
    'AWS::URLSuffix': 'amazonaws.com',
    'AWS::StackName': scope.stackName,
    'AWS::StackId': `arn:aws:cloudformation:${scope.region}:${scope.accountId}:stack/${scope.stackName}/0`,
  };
  return values[name];
}

function refOf(name: string, scope: IntrinsicScope, where: string): string {
  const pseudo = pseudoParameter(name, scope);
  if (pseudo !== undefined) return pseudo;
  const physical = scope.resource(name);
  if (physical === undefined) throw new Error(`${where}: Ref to ${name}, which is not a stood-up resource`);
  return physical.ref;
}

function getAtt(logicalId: string, attribute: string, scope: IntrinsicScope, where: string): string {
  const physical = scope.resource(logicalId);
  const value = physical?.attributes[attribute];
  if (value === undefined) {
    throw new Error(
      `${where}: Fn::GetAtt ${logicalId}.${attribute} has no stand-in value ` +
        `(known: ${Object.keys(physical?.attributes ?? {}).join(', ') || 'none'})`,
    );
  }
  return value;
}

function substitute(text: string, variables: Record<string, string>, scope: IntrinsicScope, where: string) {
  return text.replace(/\$\{(!?)([^}]+)\}/g, (_match, literal: string, name: string) => {
    if (literal === '!') return `\${${name}}`;
    const given = variables[name];
    if (given !== undefined) return given;
    const dot = name.indexOf('.');
    if (dot > 0 && !name.startsWith('AWS::')) {
      return getAtt(name.slice(0, dot), name.slice(dot + 1), scope, where);
    }
    return refOf(name, scope, where);
  });
}

/**
 * Resolves the intrinsic functions a template uses in values the functions see: `Ref`, `Fn::GetAtt`,
 * `Fn::Join`, `Fn::Sub`, `Fn::Select`, `Fn::Split`. Anything else fails, naming where it was found, so a
 * new construct that needs more is noticed rather than passed through as an object.
 */
export function resolveValue(value: unknown, scope: IntrinsicScope, where: string): unknown {
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  if (Array.isArray(value))
    return value.map((item, index) => resolveValue(item, scope, `${where}[${index}]`));
  if (typeof value !== 'object' || value === null) {
    throw new Error(`${where}: cannot resolve ${JSON.stringify(value)}`);
  }
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record);
  const intrinsic = keys.length === 1 ? keys[0] : undefined;
  const argument = intrinsic === undefined ? undefined : record[intrinsic];
  switch (intrinsic) {
    case 'Ref':
      return refOf(String(argument), scope, where);
    case 'Fn::GetAtt': {
      const [logicalId, attribute] = Array.isArray(argument)
        ? argument.map(String)
        : String(argument).split(/\.(.*)/s);
      return getAtt(logicalId ?? '', attribute ?? '', scope, where);
    }
    case 'Fn::Join': {
      const [separator, parts] = argument as [string, unknown[]];
      return resolveArray(parts, scope, `${where}.Fn::Join`).join(separator);
    }
    case 'Fn::Sub': {
      if (typeof argument === 'string') return substitute(argument, {}, scope, where);
      const [text, variables] = argument as [string, Record<string, unknown>];
      const resolved = Object.fromEntries(
        Object.entries(variables).map(([name, v]) => [name, resolveString(v, scope, `${where}.${name}`)]),
      );
      return substitute(text, resolved, scope, where);
    }
    case 'Fn::Select': {
      const [index, list] = argument as [unknown, unknown];
      const items = resolveArray(list, scope, `${where}.Fn::Select`);
      const picked = items[Number(resolveValue(index, scope, where))];
      if (picked === undefined)
        throw new Error(`${where}: Fn::Select index ${String(index)} is out of range`);
      return picked;
    }
    case 'Fn::Split': {
      const [separator, text] = argument as [string, unknown];
      return resolveString(text, scope, `${where}.Fn::Split`).split(separator);
    }
    default:
      if (intrinsic?.startsWith('Fn::') || intrinsic === 'Condition') {
        throw new Error(`${where}: ${intrinsic} is not supported by the deploy harness (see template.ts)`);
      }
      return Object.fromEntries(
        Object.entries(record).map(([key, item]) => [key, resolveValue(item, scope, `${where}.${key}`)]),
      );
  }
}

function resolveArray(value: unknown, scope: IntrinsicScope, where: string): unknown[] {
  const resolved = resolveValue(value, scope, where);
  if (!Array.isArray(resolved)) throw new Error(`${where}: expected a list, got ${JSON.stringify(resolved)}`);
  return resolved;
}

export function resolveString(value: unknown, scope: IntrinsicScope, where: string): string {
  const resolved = resolveValue(value, scope, where);
  if (typeof resolved === 'object') {
    throw new Error(`${where}: expected a string, got ${JSON.stringify(resolved)}`);
  }
  return String(resolved);
}
