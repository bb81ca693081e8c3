import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { projectRoot as defaultProjectRoot } from '../shared/config.ts';
import { CldistStack, type CldistStackProps } from './cldist-stack.ts';
import { loadStackSettings } from './settings.ts';

export interface BuildAppOptions {
  /** Context as `cdk.json` or `-c` would give it; merged over what the CLI passes in. */
  context?: Record<string, unknown>;
  projectRoot?: string;
  entries?: CldistStackProps['entries'];
  /** Working directory that relative config file names are resolved against. */
  cwd?: string;
  /** Where the cloud assembly is written; the CLI decides when unset. */
  outdir?: string;
}

/**
 * Feature flags the stack relies on, set here rather than in cdk.json so tests and the CLI agree.
 * Server access logs are delivered by bucket policy, not the legacy log-delivery ACL, so every bucket
 * can keep ACLs disabled.
 */
const featureFlags = { '@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy': true };

/** The stack's name in CloudFormation; one deployment per account and region is the expected shape. */
export const stackName = 'Cldist';

/**
 * Builds the app the CLI synthesizes and the tests assert on, so both run the same checks: the config
 * is validated by the shared schema, and cdk-nag's AwsSolutions pack runs as a validation plugin, which
 * makes any unacknowledged finding fail the synth.
 */
export function buildApp(options: BuildAppOptions = {}): { app: App; stack: CldistStack } {
  const app = new App({ context: { ...featureFlags, ...options.context }, outdir: options.outdir });
  const settings = loadStackSettings((key) => app.node.tryGetContext(key), options.cwd);
  const stack = new CldistStack(app, stackName, {
    config: settings.config,
    deploy: settings.deploy,
    projectRoot: options.projectRoot ?? defaultProjectRoot,
    entries: options.entries,
    description: `cldist: verified Container Linux mirror and instance config API (config from ${settings.configSource})`,
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { app, stack };
}
