import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { type CldistConfig, formatIssues, loadConfigFile, parseConfig } from '../shared/config.ts';
import { ConfigError } from '../shared/errors.ts';
import { eventNames } from '../shared/messages.ts';

/** Context keys read by the app; `-c key=value` on the command line or `context` in cdk.json. */
export const contextKeys = {
  config: 'cldist:config',
  configFile: 'cldist:configFile',
  deploy: 'cldist:deploy',
} as const;

/** The file single-machine mode reads too; when it is absent the app deploys the defaults. */
export const defaultConfigFile = 'cldist.config.json';

/** API Gateway throttles (requests per second, burst) when the settings leave them out. */
const apiDefaults = {
  instanceRateLimit: 20,
  instanceBurstLimit: 40,
  metadataRateLimit: 100,
  metadataBurstLimit: 200,
  bootRateLimit: 20,
  bootBurstLimit: 40,
  updateRateLimit: 50,
  updateBurstLimit: 100,
  defaultRateLimit: 10,
  defaultBurstLimit: 20,
};

/** SNS filter on the message attributes every notification carries (see shared/messages.ts). */
const filterSchema = z
  .strictObject({
    event: z.array(z.enum(eventNames)).min(1).optional(),
    channel: z.array(z.string().min(1)).min(1).optional(),
    board: z.array(z.string().min(1)).min(1).optional(),
  })
  .optional();

const email = z.email('an email address');

const subscriptionSchema = z.discriminatedUnion('protocol', [
  z.strictObject({ protocol: z.literal('email'), endpoint: email, filter: filterSchema }),
  z.strictObject({
    protocol: z.literal('https'),
    endpoint: z.url({
      protocol: /^https$/,
      error: 'an https:// URL (SNS does not deliver over plain http here)',
    }),
    filter: filterSchema,
  }),
  z.strictObject({
    protocol: z.literal('sqs'),
    endpoint: z
      .string()
      .regex(/^arn:aws[a-z-]*:sqs:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,80}(\.fifo)?$/, 'an SQS queue ARN'),
    /** Deliver the JSON event as the SQS body rather than wrapped in an SNS envelope. */
    rawMessageDelivery: z.boolean().default(true),
    filter: filterSchema,
  }),
]);

const logRetentionDays = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
] as const;

/**
 * Settings that exist only when deploying to AWS. They are kept out of the shared config so that
 * single-machine mode never has to accept (and ignore) fields that mean nothing to it.
 */
export const deploySettingsSchema = z
  .strictObject({
    subscriptions: z.array(subscriptionSchema).default([]),
    worker: z
      .strictObject({
        /** Upper bound of concurrent worker invocations fed by SQS (Lambda allows 2 to 1000). */
        maxConcurrency: z.number().int().min(2).max(1000).default(2),
        /**
         * The slowest origin download rate the worker must still finish the largest artifact at. Sets
         * the timeout; see cdk/worker-sizing.ts.
         */
        minThroughputMBps: z.number().min(5).max(1000).default(50),
      })
      .default({ maxConcurrency: 2, minThroughputMBps: 50 }),
    api: z
      .strictObject({
        domainName: z
          .string()
          .regex(/^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/, 'a lower-case DNS name')
          .optional(),
        certificateArn: z
          .string()
          .regex(
            /^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate\/[0-9a-f-]{36}$/,
            'an ACM certificate ARN',
          )
          .optional(),
        /** Steady-state requests per second allowed on each instance route (the unauthenticated ones). */
        instanceRateLimit: z.number().min(1).max(10_000).default(20),
        instanceBurstLimit: z.number().int().min(1).max(5_000).default(40),
        /**
         * Requests per second on each metadata route, which every proxy's instances share. Ignition,
         * Afterburn and coreos-cloudinit make about a dozen requests per boot, most of them answered from
         * the proxies' address cache without a second lookup.
         */
        metadataRateLimit: z.number().min(1).max(10_000).default(100),
        metadataBurstLimit: z.number().int().min(1).max(5_000).default(200),
        /** Requests per second on each network boot route (iPXE and GRUB scripts, boot-token configs). */
        bootRateLimit: z.number().min(1).max(10_000).default(20),
        bootBurstLimit: z.number().int().min(1).max(5_000).default(40),
        /**
         * Requests per second on the Omaha endpoint. Each instance checks about every 45 minutes, so
         * 10,000 instances make about 4 a second; the headroom covers a fleet booting at once.
         */
        updateRateLimit: z.number().min(1).max(10_000).default(50),
        updateBurstLimit: z.number().int().min(1).max(5_000).default(100),
        /** Limits for every other route (the IAM-authorised admin routes). */
        defaultRateLimit: z.number().min(1).max(10_000).default(10),
        defaultBurstLimit: z.number().int().min(1).max(5_000).default(20),
      })
      .refine(
        (api) => (api.domainName === undefined) === (api.certificateArn === undefined),
        'domainName and certificateArn go together: set both or neither',
      )
      .default(apiDefaults),
    mirror: z
      .strictObject({
        /** Serve the mirror through CloudFront (origin access control; the bucket stays private). */
        cloudFront: z.boolean().default(true),
        /** Server access logs for both buckets, into a dedicated log bucket. */
        accessLogs: z.boolean().default(false),
        /** The object whose armored keys extend the bundled keyring (key rotation). */
        trustKeyringKey: z
          .string()
          .regex(/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/, 'an S3 key such as "trust/keyring.asc"')
          .default('trust/keyring.asc'),
      })
      .default({ cloudFront: true, accessLogs: false, trustKeyringKey: 'trust/keyring.asc' }),
    alarms: z
      .strictObject({
        /** Where alarm notifications go; without it the operator topic has no subscriber. */
        email: email.optional(),
        /**
         * 5xx answers per 5 minutes before the API alarm fires. Not zero: the API answers 503 on purpose
         * while a config is not ready, and Ignition retries it.
         */
        api5xxPerFiveMinutes: z.number().int().min(1).default(10),
      })
      .default({ api5xxPerFiveMinutes: 10 }),
    logRetentionDays: z
      .number()
      .refine((days) => (logRetentionDays as readonly number[]).includes(days), {
        message: `one of ${logRetentionDays.join(', ')} (CloudWatch Logs retention periods)`,
      })
      .default(90),
  })
  .default({
    subscriptions: [],
    worker: { maxConcurrency: 2, minThroughputMBps: 50 },
    api: apiDefaults,
    mirror: { cloudFront: true, accessLogs: false, trustKeyringKey: 'trust/keyring.asc' },
    alarms: { api5xxPerFiveMinutes: 10 },
    logRetentionDays: 90,
  });

export type DeploySettings = z.infer<typeof deploySettingsSchema>;
export type SubscriptionSetting = DeploySettings['subscriptions'][number];

export interface StackSettings {
  config: CldistConfig;
  deploy: DeploySettings;
  /** Where the config came from, for error messages and the stack description. */
  configSource: string;
}

/** `-c key=value` delivers strings; cdk.json delivers objects. Both are accepted. */
function contextObject(value: unknown, key: string): unknown {
  if (typeof value !== 'string') {
    return value;
  }
  try {
    return JSON.parse(value);
  } catch (cause) {
    throw new ConfigError(`context ${key} is not valid JSON: ${(cause as Error).message}`, { cause });
  }
}

export function parseDeploySettings(input: unknown, source: string = contextKeys.deploy): DeploySettings {
  const result = deploySettingsSchema.safeParse(input ?? undefined);
  if (!result.success) {
    throw new ConfigError(`${source} is invalid:\n${formatIssues(result.error, source)}`);
  }
  return result.data;
}

/**
 * Resolves the same validated config single-machine mode uses. Precedence: an inline `cldist:config`
 * object, then the file named by `cldist:configFile`. Only the default file name may be absent (then the
 * defaults are deployed): a file named explicitly and missing is a typo, not a wish for defaults.
 */
export function loadStackSettings(
  tryGetContext: (key: string) => unknown,
  cwd = process.cwd(),
): StackSettings {
  const deploy = parseDeploySettings(contextObject(tryGetContext(contextKeys.deploy), contextKeys.deploy));
  const inline = tryGetContext(contextKeys.config);
  if (inline !== undefined) {
    const config = parseConfig(contextObject(inline, contextKeys.config), `context ${contextKeys.config}`);
    return { config, deploy, configSource: `context ${contextKeys.config}` };
  }
  const named = tryGetContext(contextKeys.configFile);
  if (named !== undefined && typeof named !== 'string') {
    throw new ConfigError(`context ${contextKeys.configFile} must be a file name, got ${typeof named}`);
  }
  const fileName = named ?? defaultConfigFile;
  const path = isAbsolute(fileName) ? fileName : resolve(cwd, fileName);
  if (!existsSync(path)) {
    if (fileName === defaultConfigFile) {
      return { config: parseConfig({}, 'defaults'), deploy, configSource: 'defaults' };
    }
    throw new ConfigError(`context ${contextKeys.configFile} names ${path}, which does not exist`);
  }
  return { config: loadConfigFile(path), deploy, configSource: `file ${fileName}` };
}
