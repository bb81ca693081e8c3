import { type AwsClients, makeAwsClients } from '../aws-clients.ts';
import { ConfigError } from '../errors.ts';
import { parseRuntimeEnv } from '../runtime-env.ts';
import type { MirrorLogger } from './deps.ts';
import { createMirrorRuntime, type MirrorRuntime } from './runtime.ts';

export type { MirrorRuntime } from './runtime.ts';

/**
 * Cold start of a mirror Lambda: the runtime built once from the environment the stack sets. A missing
 * topic (or jobs queue, unless `role` is `worker`, which sends no jobs) fails here, before any event is
 * taken.
 */
export async function loadMirrorRuntime(
  env: Record<string, string | undefined>,
  options: { logger: MirrorLogger; role?: 'poller' | 'worker'; clients?: AwsClients },
): Promise<MirrorRuntime> {
  const { config, resources } = parseRuntimeEnv(env);
  if (resources.jobsQueueUrl === undefined && options.role !== 'worker') {
    throw new ConfigError('CLDIST_RESOURCES.jobsQueueUrl is required by the poller');
  }
  if (resources.topicArn === undefined) {
    throw new ConfigError('CLDIST_RESOURCES.topicArn is required by the mirror functions');
  }
  return createMirrorRuntime({
    config,
    resources,
    clients: options.clients ?? makeAwsClients({ region: env.AWS_REGION }),
    logger: options.logger,
  });
}
