import * as z from 'zod';
import { type CldistConfig, formatIssues, parseConfig } from './config.ts';
import { ConfigError } from './errors.ts';

/**
 * What a deployed function is told about its surroundings. The CDK stack sets exactly these variables;
 * a function parses them once at cold start so a bad deployment fails loudly before any event is taken.
 */
const resourcesSchema = z.strictObject({
  tableName: z.string().min(3),
  // Not z.url(): emulator queue URLs such as http://sqs.us-east-1.127.0.0.1:4566/… fail its host check.
  jobsQueueUrl: z
    .string()
    .regex(/^https?:\/\/[^\s/]+\/\S+$/, 'an SQS queue URL')
    .optional(),
  topicArn: z.string().startsWith('arn:').optional(),
  mirrorBucket: z.string().min(3).optional(),
  configBucket: z.string().min(3).optional(),
  /** SSE-KMS key for config bodies. */
  configKmsKeyId: z.string().min(1).optional(),
  /** Secrets Manager secret the metadata proxies sign with (AWSCURRENT and AWSPREVIOUS are accepted). */
  metadataProxySecretArn: z.string().startsWith('arn:').optional(),
  /**
   * The mirror's public HTTPS base (CloudFront), which Omaha answers name as the payloads' codebase;
   * absent (no CloudFront, a private bucket), the update endpoint is not served.
   */
  mirrorPublicUrl: z.url().optional(),
  /** Object in the mirror bucket whose armored keys extend the bundled keyring (key rotation). */
  trustKeyringKey: z.string().min(1).optional(),
});

export type DeployedResources = z.infer<typeof resourcesSchema>;

export interface RuntimeEnv {
  config: CldistConfig;
  resources: DeployedResources;
}

/** Variable names the stack sets and the handlers read. */
export const runtimeEnvNames = { config: 'CLDIST_CONFIG', resources: 'CLDIST_RESOURCES' } as const;

function parseJsonVariable(env: Record<string, string | undefined>, name: string): unknown {
  const text = env[name];
  if (text === undefined || text === '') {
    throw new ConfigError(`environment variable ${name} is not set; deploy with the cldist CDK stack`);
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new ConfigError(`environment variable ${name} is not valid JSON`, { cause });
  }
}

export function parseRuntimeEnv(env: Record<string, string | undefined>): RuntimeEnv {
  const config = parseConfig(parseJsonVariable(env, runtimeEnvNames.config), runtimeEnvNames.config);
  const result = resourcesSchema.safeParse(parseJsonVariable(env, runtimeEnvNames.resources));
  if (!result.success) {
    throw new ConfigError(`${runtimeEnvNames.resources} is invalid:\n${formatIssues(result.error)}`);
  }
  return { config, resources: result.data };
}
