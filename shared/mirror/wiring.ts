import { type AwsClients, makeAwsClients } from '../aws-clients.ts';
import type { CldistConfig } from '../config.ts';
import { ConfigError } from '../errors.ts';
import { createDynamoLedger } from '../ledger/ledger.ts';
import { createSnsNotifier } from '../notify/index.ts';
import { parseRuntimeEnv } from '../runtime-env.ts';
import { createStore } from '../store/index.ts';
import { s3TrustSource } from '../trust/s3-source.ts';
import type { TrustSource } from '../trust/source.ts';
import { loadTrustedKeyring, reloadFailure, type TrustedKeyring } from '../trust/trusted-keyring.ts';
import { loadKeyringFromConfig } from '../verify/keyring.ts';
import { createSqsJobQueue, type EventSink, type MirrorDeps, type MirrorLogger } from './deps.ts';
import { trustedChecker } from './signatures.ts';

const MiB = 1024 * 1024;

export interface MirrorRuntime {
  deps: MirrorDeps;
  config: CldistConfig;
}

/** A deployment without a trust object (or without a mirror bucket) has a keyring that never changes. */
const noTrustObject: TrustSource = {
  location: 'the bundled keyring (no trust object configured)',
  read: (known) =>
    Promise.resolve(
      known === undefined ? { changed: true, version: 'static', inputs: [] } : { changed: false },
    ),
};

/**
 * The rotated keys: an object in the mirror bucket whose armored keys extend the bundled keyring, so a new
 * signing subkey is trusted without a redeploy. Read at cold start, again when a signer is unknown, and at
 * least every `keyring.refreshSeconds`.
 */
export function mirrorTrust(
  config: CldistConfig,
  source: TrustSource,
  logger: MirrorLogger,
  clock: () => Date = () => new Date(),
): Promise<TrustedKeyring> {
  return loadTrustedKeyring({
    source,
    build: (inputs) =>
      loadKeyringFromConfig(
        config.keyring,
        inputs.map((input) => input.text),
      ),
    clock,
    minRefreshMs: config.keyring.unknownSignerRecheckSeconds * 1000,
    maxAgeMs: config.keyring.refreshSeconds * 1000,
    onReloaded: (version, reason) =>
      logger.info('trust reloaded', { location: source.location, version, reason }),
    onReloadFailed: (error, reason) =>
      logger.error('trust reload failed; the previous keyring stays in force', {
        ...reloadFailure(error, reason, source.location),
      }),
  });
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
  const trustSource =
    resources.mirrorBucket === undefined || resources.trustKeyringKey === undefined
      ? noTrustObject
      : s3TrustSource(
          clients.s3,
          resources.mirrorBucket,
          `${storeConfig.kind === 's3' ? storeConfig.prefix : ''}${resources.trustKeyringKey}`,
        );
  const trust = await mirrorTrust(config, trustSource, options.logger);
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
      signatures: trustedChecker(trust),
      clock: () => new Date(),
      logger: options.logger,
    },
  };
}
