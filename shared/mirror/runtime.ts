import type { AwsClients } from '../aws-clients.ts';
import { createDynamoBootStore } from '../boot/store.ts';
import type { CldistConfig } from '../config.ts';
import { ConfigError } from '../errors.ts';
import { type FleetLedger, fleetLedgerFor } from '../ledger/fleet.ts';
import { createDynamoLedger } from '../ledger/ledger.ts';
import { createSnsNotifier } from '../notify/index.ts';
import { featurePins } from '../retention/feature-pins.ts';
import type { PinnedReleases } from '../retention/pinned.ts';
import type { DeployedResources } from '../runtime-env.ts';
import { createStore } from '../store/index.ts';
import type { ObjectStore } from '../store/types.ts';
import type { TrustSource } from '../trust/source.ts';
import { loadTrustedKeyring, reloadFailure, type TrustedKeyring } from '../trust/trusted-keyring.ts';
import { loadUpdatePayloadKeys } from '../update/crau-verify.ts';
import { updateLayoutProblem } from '../update/origin.ts';
import { loadKeyringFromConfig } from '../verify/keyring.ts';
import {
  type Clock,
  createSqsJobQueue,
  type EventSink,
  type JobQueue,
  type MirrorDeps,
  type MirrorLogger,
} from './deps.ts';
import { trustedChecker } from './signatures.ts';
import { resolveMirrorStore, type StoreConfig } from './store-location.ts';

const MiB = 1024 * 1024;

/** What the mirror is told about its surroundings: the stack's resources, or the stand-ins' on one machine. */
export type MirrorResources = Pick<
  DeployedResources,
  'tableName' | 'jobsQueueUrl' | 'topicArn' | 'mirrorBucket' | 'trustKeyringKey'
> & {
  /** One machine without an S3 store: the mirror folder (under the data dir). */
  localMirrorRoot?: string;
};

/** A deployment without a trust object (or without a mirror bucket) has a keyring that never changes. */
const noTrustObject: TrustSource = {
  location: 'the bundled keyring (no trust object configured)',
  read: (known) =>
    Promise.resolve(
      known === undefined ? { changed: true, version: 'static', inputs: [] } : { changed: false },
    ),
};

/**
 * The keyring that follows a trust source: the configured keys, extended by the armored keys the source
 * holds, so a new signing subkey is trusted without a redeploy. Read at start, again when a signer is
 * unknown, and at least every `keyring.refreshSeconds`.
 */
export function mirrorTrust(
  config: CldistConfig,
  source: TrustSource,
  logger: MirrorLogger,
  clock: Clock = () => new Date(),
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
      logger.info('trust.reloaded', { location: source.location, version, reason }),
    onReloadFailed: (error, reason) =>
      logger.error('trust.reload_failed', { ...reloadFailure(error, reason, source.location) }),
  });
}

/** The S3 trust object, its reader (and the S3 SDK) loaded only where one is configured. */
async function trustSourceOf(
  resources: MirrorResources,
  store: StoreConfig,
  clients: MirrorClients,
): Promise<TrustSource> {
  if (resources.mirrorBucket === undefined || resources.trustKeyringKey === undefined) return noTrustObject;
  const prefix = store.kind === 's3' ? store.prefix : '';
  const { s3TrustSource } = await import('../trust/s3-source.ts');
  return s3TrustSource(
    needClient(clients.s3, 'an S3 client', 'mirrorBucket'),
    resources.mirrorBucket,
    `${prefix}${resources.trustKeyringKey}`,
  );
}

/** A resource named without the client to reach it is a wiring mistake, reported at start. */
function needClient<T>(client: T | undefined, what: string, resource: string): T {
  if (client === undefined)
    throw new ConfigError(`CLDIST_RESOURCES.${resource} is set but ${what} was not given`);
  return client;
}

const noJobQueue: JobQueue = {
  sendJobs: () =>
    Promise.reject(new ConfigError('CLDIST_RESOURCES.jobsQueueUrl is not set; this function sends no jobs')),
};

const noTopic: EventSink = {
  publish: () =>
    Promise.reject(new ConfigError('CLDIST_RESOURCES.topicArn is not set; this host publishes no events')),
};

export type MirrorClients = Pick<AwsClients, 'doc'> & Partial<Pick<AwsClients, 's3' | 'sqs' | 'sns'>>;

export interface MirrorRuntimeOptions {
  config: CldistConfig;
  resources: MirrorResources;
  /** Only the ledger's is always needed; the others where a resource (or an S3 store) calls for them. */
  clients: MirrorClients;
  logger: MirrorLogger;
  clock?: Clock;
  /**
   * Releases retention must never delete; by default those the ledger's bare-metal profiles and update
   * groups pin. The one seam where those features join in, so both hosts prune alike.
   */
  pinned?: PinnedReleases;
  /** A host that watches its own trust (a file on one machine, a rotation in chaos); default the S3 trust object. */
  trust?: TrustedKeyring;
  /**
   * The host's last word on the parts, e.g. chaos wrapping the ledger and store with its recorders, or one
   * machine sending events to the console. Whatever it returns is what every job and poll uses.
   */
  decorate?: (deps: MirrorDeps) => MirrorDeps;
}

export interface MirrorRuntime {
  deps: MirrorDeps;
  /** The config with the resolved store, as the cores see it. */
  config: CldistConfig;
  /** The store as built, before `decorate`: for the host's HTTP mirror and start-up log. */
  store?: ObjectStore;
  /** Hides a message for `seconds` (the retry schedule); absent where the host's queue does it itself. */
  delayRetry?: (receiptHandle: string, seconds: number) => Promise<void>;
  /** The fleet part of the ledger, on the same table: the scheduled fleet pass and one machine's recorder. */
  fleet?: FleetLedger;
}

/**
 * The one place the mirror's dependencies are assembled, for the Lambda functions, `cldist serve`,
 * `cldist mirror --once`, chaos and the benchmarks: ledger, store, job queue, notifier, signature checker.
 */
export async function createMirrorRuntime(options: MirrorRuntimeOptions): Promise<MirrorRuntime> {
  const { config, resources, clients, logger } = options;
  const layoutProblem = updateLayoutProblem(config);
  if (layoutProblem !== undefined) throw new ConfigError(layoutProblem);
  const clock = options.clock ?? (() => new Date());
  const storeConfig = resolveMirrorStore(config, resources);
  const store = await createStore(storeConfig, {
    s3: clients.s3,
    partSizeBytes: config.worker.partSizeMiB * MiB,
    partsInFlight: config.worker.partsInFlight,
  });
  const trust =
    options.trust ??
    (await mirrorTrust(config, await trustSourceOf(resources, storeConfig, clients), logger, clock));
  const queueUrl = resources.jobsQueueUrl;
  const queue =
    queueUrl === undefined
      ? undefined
      : { url: queueUrl, sqs: needClient(clients.sqs, 'an SQS client', 'jobsQueueUrl') };
  const ledger = createDynamoLedger(clients.doc, resources.tableName, { clock });
  const profiles = createDynamoBootStore(clients.doc, resources.tableName, clock);
  const built: MirrorDeps = {
    ledger,
    store,
    notifier:
      resources.topicArn === undefined
        ? noTopic
        : createSnsNotifier(needClient(clients.sns, 'an SNS client', 'topicArn'), resources.topicArn),
    jobs: queue === undefined ? noJobQueue : createSqsJobQueue(queue.sqs, queue.url),
    signatures: trustedChecker(trust),
    pinned: options.pinned ?? featurePins({ profiles, groups: ledger, sources: config.sources }),
    clock,
    logger,
    ...(config.update === undefined ? {} : { updateKeys: loadUpdatePayloadKeys(config.update.payloadKeys) }),
  };
  return {
    deps: options.decorate?.(built) ?? built,
    config: { ...config, store: storeConfig },
    store,
    fleet: fleetLedgerFor(clients.doc, resources.tableName, config, clock),
    ...(queue === undefined
      ? {}
      : {
          delayRetry: async (receiptHandle: string, seconds: number) => {
            const { ChangeMessageVisibilityCommand } = await import('@aws-sdk/client-sqs');
            await queue.sqs.send(
              new ChangeMessageVisibilityCommand({
                QueueUrl: queue.url,
                ReceiptHandle: receiptHandle,
                VisibilityTimeout: seconds,
              }),
            );
          },
        }),
  };
}
