import { type AwsClients, makeAwsClients } from '../aws-clients.ts';
import type { CldistConfig } from '../config.ts';
import { ConfigError } from '../errors.ts';
import { createDynamoLedger } from '../ledger/ledger.ts';
import { createSnsNotifier } from '../notify/index.ts';
import { parseRuntimeEnv } from '../runtime-env.ts';
import { createStore } from '../store/index.ts';
import type { ObjectStore } from '../store/types.ts';
import { loadKeyringFromConfig } from '../verify/keyring.ts';
import { createSqsJobQueue, type EventSink, type MirrorDeps, type MirrorLogger } from './deps.ts';
import { keyringChecker } from './signatures.ts';

const MiB = 1024 * 1024;

export interface MirrorRuntime {
  deps: MirrorDeps;
  config: CldistConfig;
}

/**
 * The rotated keys: an object in the mirror bucket whose armored keys extend the bundled keyring, so a new
 * signing subkey is trusted without a redeploy. Read at cold start; a new container picks up a change.
 */
async function extraKeys(store: ObjectStore, key: string | undefined): Promise<string[]> {
  if (key === undefined) return [];
  const body = await store.get(key);
  return body === undefined ? [] : [new TextDecoder().decode(body)];
}

/**
 * Cold start of a mirror Lambda: everything the handlers need, built once from the environment the stack
 * sets. A missing topic (or jobs queue, unless `role` is `worker`, which sends no jobs) fails here, before
 * any event is taken.
 */
export async function loadMirrorRuntime(
  env: Record<string, string | undefined>,
  options: { logger: MirrorLogger; role?: 'poller' | 'worker'; clients?: AwsClients },
): Promise<MirrorRuntime> {
  const { config, resources } = parseRuntimeEnv(env);
  const jobsQueueUrl = resources.jobsQueueUrl;
  if (jobsQueueUrl === undefined && options.role !== 'worker') {
    throw new ConfigError('CLDIST_RESOURCES.jobsQueueUrl is required by the poller');
  }
  if (resources.topicArn === undefined) {
    throw new ConfigError('CLDIST_RESOURCES.topicArn is required by the mirror functions');
  }
  const clients = options.clients ?? makeAwsClients({ region: env.AWS_REGION });
  const storeConfig: CldistConfig['store'] =
    resources.mirrorBucket === undefined
      ? config.store
      : {
          kind: 's3',
          bucket: resources.mirrorBucket,
          prefix: config.store.kind === 's3' ? config.store.prefix : '',
        };
  const store = createStore(storeConfig, {
    s3: clients.s3,
    partSizeBytes: config.worker.partSizeMiB * MiB,
    partsInFlight: config.worker.partsInFlight,
  });
  const keyring = await loadKeyringFromConfig(
    config.keyring,
    await extraKeys(store, resources.trustKeyringKey),
  );
  const notifier: EventSink = createSnsNotifier(clients.sns, resources.topicArn);
  return {
    config: { ...config, store: storeConfig },
    deps: {
      ledger: createDynamoLedger(clients.doc, resources.tableName),
      store,
      notifier,
      jobs:
        jobsQueueUrl === undefined
          ? {
              sendJobs: () =>
                Promise.reject(
                  new ConfigError('CLDIST_RESOURCES.jobsQueueUrl is not set; this function sends no jobs'),
                ),
            }
          : createSqsJobQueue(clients.sqs, jobsQueueUrl),
      signatures: keyringChecker(keyring),
      clock: () => new Date(),
      logger: options.logger,
    },
  };
}
