import { readdirSync, readFileSync } from 'node:fs';
import { join, posix, relative } from 'node:path';
import { projectRoot } from '../../shared/config.ts';
import {
  metricNames,
  metricNamespace,
  serviceDimension,
  serviceNames,
} from '../../shared/telemetry-names.ts';
import { alarmedMetric, type CfnResource, logicalIdsOfType } from './support.ts';

/** Product code, by project-relative POSIX path. */
export type Sources = Map<string, string>;

const productFolders = ['functions', 'shared', 'local', 'cdk'];

function walk(folder: string, into: Sources): void {
  for (const entry of readdirSync(join(projectRoot, folder), { withFileTypes: true })) {
    const path = posix.join(folder, entry.name);
    if (entry.isDirectory()) walk(path, into);
    else if (entry.name.endsWith('.ts')) into.set(path, readFileSync(join(projectRoot, path), 'utf8'));
  }
}

export function loadProductSources(): Sources {
  const sources: Sources = new Map();
  for (const folder of productFolders) walk(folder, sources);
  return sources;
}

/** Relative imports, static and dynamic, resolved to project-relative paths. */
function importsOf(path: string, text: string): string[] {
  const found: string[] = [];
  for (const match of text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*)'(\.{1,2}\/[^']+)'/g)) {
    const specifier = match[1];
    if (specifier !== undefined) found.push(posix.normalize(posix.join(posix.dirname(path), specifier)));
  }
  return found;
}

/** Every product module `entry` loads, itself included. */
export function moduleClosure(entry: string, sources: Sources): Set<string> {
  const seen = new Set<string>();
  const pending = [entry];
  for (let path = pending.pop(); path !== undefined; path = pending.pop()) {
    const text = sources.get(path);
    if (seen.has(path) || text === undefined) continue;
    seen.add(path);
    pending.push(...importsOf(path, text));
  }
  return seen;
}

const keyOf = <T extends Record<string, string>>(table: T, value: unknown): keyof T | undefined =>
  (Object.keys(table) as (keyof T)[]).find((key) => table[key] === value);

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Every module the Lambda handlers that publish Powertools metrics in cldist's namespace under a
 * service's name load: a handler counts when it, or a module it loads, builds that `Metrics`.
 */
function modulesOfService(serviceKey: string, sources: Sources): Set<string> {
  const publisher = new RegExp(
    `new Metrics\\(\\{[^}]*namespace:\\s*metricNamespace[^}]*serviceName:\\s*serviceNames\\.${escapeRegExp(serviceKey)}\\b`,
  );
  const loaded = new Set<string>();
  for (const handler of [...sources.keys()].filter((path) => /^functions\/[^/]+\/handler\.ts$/.test(path))) {
    const closure = moduleClosure(handler, sources);
    if ([...closure].some((path) => publisher.test(sources.get(path) ?? ''))) {
      for (const path of closure) loaded.add(path);
    }
  }
  return loaded;
}

/** The modules that call `addMetric` with a given constant of shared/telemetry-names.ts. */
function emittersOf(metricKey: string, sources: Sources): string[] {
  const emit = new RegExp(`addMetric\\(\\s*metricNames\\.${escapeRegExp(metricKey)}\\b`);
  return [...sources].filter(([, text]) => emit.test(text)).map(([path]) => path);
}

/** The dimension that names the resource an AWS service publishes a metric for, and its type. */
const awsPublishers: Record<string, { dimension: string; type: string }> = {
  'AWS/Lambda': { dimension: 'FunctionName', type: 'AWS::Lambda::Function' },
  'AWS/SQS': { dimension: 'QueueName', type: 'AWS::SQS::Queue' },
  'AWS/ApiGateway': { dimension: 'ApiId', type: 'AWS::ApiGatewayV2::Api' },
  'AWS/DynamoDB': { dimension: 'TableName', type: 'AWS::DynamoDB::Table' },
};

function referencedId(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const ref = (value as { Ref?: unknown }).Ref;
  if (typeof ref === 'string') return ref;
  const getAtt = (value as { 'Fn::GetAtt'?: unknown })['Fn::GetAtt'];
  return Array.isArray(getAtt) && typeof getAtt[0] === 'string' ? getAtt[0] : undefined;
}

function serviceOfFunctions(resources: Record<string, CfnResource>): Set<unknown> {
  return new Set(
    logicalIdsOfType(resources, 'AWS::Lambda::Function').map(
      (id) =>
        (resources[id]?.Properties?.Environment as { Variables?: Record<string, unknown> } | undefined)
          ?.Variables?.POWERTOOLS_SERVICE_NAME,
    ),
  );
}

/**
 * Why each alarm of a template might watch a metric nobody emits. A custom metric must be one of
 * `metricNames`, carry the `service` dimension of a function in the template, and be emitted by a module
 * that function's handler loads (the handler being the one whose Powertools Metrics publishes under that
 * service). An AWS metric must name, by its resource dimension, a resource of the publishing service's
 * type in the same template. Empty when every alarm is linked.
 */
export function unlinkedAlarms(resources: Record<string, CfnResource>, sources: Sources): string[] {
  const problems: string[] = [];
  const deployedServices = serviceOfFunctions(resources);
  for (const id of logicalIdsOfType(resources, 'AWS::CloudWatch::Alarm')) {
    const metric = alarmedMetric(resources[id]?.Properties ?? {});
    const named = `alarm ${id} on ${metric.namespace}/${metric.metricName}`;
    const aws = awsPublishers[metric.namespace];
    if (aws !== undefined) {
      const value = metric.dimensions.find((d) => d.Name === aws.dimension)?.Value;
      const target = referencedId(value);
      if (target === undefined || resources[target]?.Type !== aws.type) {
        problems.push(`${named}: its ${aws.dimension} names no ${aws.type} of this template`);
      }
      continue;
    }
    if (metric.namespace !== metricNamespace) {
      problems.push(`${named}: no code emits into this namespace`);
      continue;
    }
    const metricKey = keyOf(metricNames, metric.metricName);
    if (metricKey === undefined) {
      problems.push(`${named}: not one of metricNames in shared/telemetry-names.ts`);
      continue;
    }
    const service = metric.dimensions.find((d) => d.Name === serviceDimension)?.Value;
    const serviceKey = keyOf(serviceNames, service);
    if (serviceKey === undefined || !deployedServices.has(service)) {
      problems.push(
        `${named}: its ${serviceDimension} dimension ${JSON.stringify(service)} is no deployed function`,
      );
      continue;
    }
    const loaded = modulesOfService(serviceKey, sources);
    if (!emittersOf(metricKey, sources).some((path) => loaded.has(path))) {
      problems.push(
        `${named}: no module the ${service} function loads calls addMetric(metricNames.${metricKey})`,
      );
    }
  }
  return problems;
}

/** Where product code spells a metric or service name as a literal instead of importing the constant. */
export function literalTelemetryNames(sources: Sources): string[] {
  const names = [...Object.values(metricNames), ...Object.values(serviceNames)];
  const literal = new RegExp(`['"](${names.map(escapeRegExp).join('|')})['"]`);
  return [...sources]
    .filter(([path, text]) => path !== 'shared/telemetry-names.ts' && literal.test(text))
    .map(([path]) => relative('.', path));
}
