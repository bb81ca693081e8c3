import { existsSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { Duration, RemovalPolicy, Size, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { type BundlingOptions, NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import type { CldistConfig } from '../../shared/config.ts';
import { compactConfig } from '../../shared/config-compact.ts';
import { ConfigError } from '../../shared/errors.ts';
import { type DeployedResources, runtimeEnvNames } from '../../shared/runtime-env.ts';
import { metricNamespace, type ServiceName } from '../../shared/telemetry-names.ts';
import { acknowledge } from '../nag.ts';

/** Lambda refuses a function whose environment (names and values) exceeds 4 KiB. */
export const lambdaEnvironmentLimitBytes = 4096;

/** Where bundled files land in the function: Lambda unpacks the bundle into LAMBDA_TASK_ROOT. */
export const lambdaTaskRoot = '/var/task';

/** Lets ESM bundles load the CommonJS dependencies esbuild leaves as `require` calls. */
const esmRequireBanner =
  "import { createRequire as cldistCreateRequire } from 'module'; const require = cldistCreateRequire(import.meta.url);";

/**
 * The signature verifier hashes on a worker thread whose entry is its own module, so every bundle gets
 * `hash-worker.mjs` beside `index.mjs`, built by the same local esbuild (shared/verify/hash-thread.ts
 * starts it from there).
 */
function hashWorkerBuild(projectRoot: string, outputDir: string): string {
  const esbuild = join(projectRoot, 'node_modules', 'esbuild', 'bin', 'esbuild');
  const entry = join(projectRoot, 'shared', 'verify', 'hash-worker.ts');
  return [
    `node "${esbuild}" "${entry}" --bundle --platform=node --format=esm --target=node22 --minify`,
    `--log-level=warning --outfile="${join(outputDir, 'hash-worker.mjs')}"`,
  ].join(' ');
}

/** A file copied next to the bundle, e.g. a keyring the verifier reads by path. */
export interface BundledFile {
  /** Absolute path on the synth machine. */
  source: string;
  /** Path inside the bundle, relative to its root. */
  target: string;
}

export interface CldistFunctionProps {
  /** Absolute path of the handler module (exports `handler`). */
  entry: string;
  /** Directory holding package-lock.json; the bundle resolves modules from here. */
  projectRoot: string;
  description: string;
  /** Powertools `service` dimension and log field; alarms on custom metrics match on it. */
  serviceName: ServiceName;
  config: CldistConfig;
  resources: DeployedResources;
  /**
   * Memory in MiB, which also sets the CPU share.
   * @default 512
   */
  memorySize?: number;
  /** @default Duration.seconds(30) */
  timeout?: Duration;
  /**
   * Size of /tmp in MiB.
   * @default Lambda's own default, 512
   */
  ephemeralStorageMiB?: number;
  logRetentionDays: logs.RetentionDays;
  /**
   * Files copied into the bundle next to the handler.
   * @default none
   */
  files?: BundledFile[];
}

/** Token placeholders resolve to names and ARNs of at most this many characters. */
const resolvedTokenAllowance = 160;

function estimatedEnvironmentBytes(environment: Record<string, string>): number {
  let total = 0;
  for (const [name, value] of Object.entries(environment)) {
    const tokens = value.match(/\$\{Token\[[^\]]+\]\}/g) ?? [];
    total += name.length + value.length + tokens.length * resolvedTokenAllowance;
  }
  return total;
}

function checkSources(id: string, props: CldistFunctionProps): void {
  if (!existsSync(props.entry)) {
    throw new ConfigError(
      `handler ${relative(props.projectRoot, props.entry)} does not exist; the ${id} function is built from it`,
    );
  }
  for (const file of props.files ?? []) {
    if (!existsSync(file.source)) {
      throw new ConfigError(`file ${file.source} bundled into the ${id} function does not exist`);
    }
  }
}

/** Exactly the contract of shared/runtime-env.ts, refused here if it would not fit Lambda's 4 KiB. */
function functionEnvironment(
  scope: Construct,
  id: string,
  props: CldistFunctionProps,
): Record<string, string> {
  const stack = Stack.of(scope);
  const config = compactConfig(props.config);
  const environment: Record<string, string> = {
    [runtimeEnvNames.config]: stack.toJsonString(config),
    [runtimeEnvNames.resources]: stack.toJsonString(props.resources),
    POWERTOOLS_SERVICE_NAME: props.serviceName,
    POWERTOOLS_METRICS_NAMESPACE: metricNamespace,
    NODE_OPTIONS: '--enable-source-maps',
  };
  const size = estimatedEnvironmentBytes({
    ...environment,
    [runtimeEnvNames.config]: JSON.stringify(config),
    [runtimeEnvNames.resources]: JSON.stringify(props.resources),
  });
  if (size > lambdaEnvironmentLimitBytes) {
    throw new ConfigError(
      `the ${id} function's environment would be about ${size} bytes, over Lambda's ${lambdaEnvironmentLimitBytes}; ` +
        'shorten the config (fewer channels, artifacts or keyring files)',
    );
  }
  return environment;
}

function bundlingOptions(projectRoot: string, files: BundledFile[]): BundlingOptions {
  return {
    forceDockerBundling: false,
    format: OutputFormat.ESM,
    target: 'node22',
    minify: true,
    sourceMap: true,
    mainFields: ['module', 'main'],
    banner: esmRequireBanner,
    externalModules: [],
    commandHooks: {
      beforeBundling: () => [],
      beforeInstall: () => [],
      afterBundling: (_inputDir: string, outputDir: string) => [
        hashWorkerBuild(projectRoot, outputDir),
        ...files.flatMap((file) => {
          const target = join(outputDir, file.target);
          return [`mkdir -p "${join(target, '..')}"`, `cp "${file.source}" "${target}"`];
        }),
      ],
    },
  };
}

/**
 * The one way this app builds a Lambda function, so every function gets the same safe defaults:
 * nodejs22.x on arm64 (20% cheaper per GB-second; the worker is bound by its download, not the CPU), an
 * ESM bundle built by local
 * esbuild (no Docker, works offline), its own log group with retention instead of the never-expiring
 * default, active X-Ray tracing, JSON logs, and a role that starts with no permissions at all (no
 * AWSLambdaBasicExecutionRole: it may write only to its own log group).
 *
 * The environment is exactly the contract of shared/runtime-env.ts, which the handlers parse at cold
 * start; a config too large for Lambda's 4 KiB environment is refused here rather than at deploy time.
 */
export class CldistFunction extends NodejsFunction {
  readonly ownLogGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: CldistFunctionProps) {
    checkSources(id, props);
    const environment = functionEnvironment(scope, id, props);

    const logGroup = new logs.LogGroup(scope, `${id}Logs`, {
      retention: props.logRetentionDays,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const role = new iam.Role(scope, `${id}Role`, {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `cldist ${id}: only what the function needs`,
    });
    logGroup.grantWrite(role);

    super(scope, id, {
      entry: props.entry,
      handler: 'handler',
      projectRoot: props.projectRoot,
      depsLockFilePath: join(props.projectRoot, 'package-lock.json'),
      description: props.description,
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout ?? Duration.seconds(30),
      ephemeralStorageSize:
        props.ephemeralStorageMiB === undefined ? undefined : Size.mebibytes(props.ephemeralStorageMiB),
      tracing: lambda.Tracing.ACTIVE,
      loggingFormat: lambda.LoggingFormat.JSON,
      logGroup,
      role,
      environment,
      bundling: bundlingOptions(props.projectRoot, props.files ?? []),
    });
    this.ownLogGroup = logGroup;
    acknowledge(
      this,
      'AwsSolutions-L1',
      'nodejs22.x is pinned on purpose: it is the runtime the code and its tests target; a newer runtime is adopted by changing this construct deliberately, not by a linter.',
    );
    acknowledge(
      role,
      'AwsSolutions-IAM5[Resource::*]',
      'Active X-Ray tracing needs xray:PutTraceSegments and xray:PutTelemetryRecords, which support no resource-level permissions; every other statement names its resource.',
    );
  }

  /** Bundle-relative path of a file copied with `files`, as the running function sees it. */
  static bundledPath(target: string): string {
    return `${lambdaTaskRoot}/${target}`;
  }

  /** Name under which a keyring file is bundled: flat, so config paths stay short. */
  static keyringTarget(source: string): string {
    return `keys/${basename(source)}`;
  }
}
