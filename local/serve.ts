import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { createAdaptorServer } from '@hono/node-server';
import { Hono } from 'hono';
import { createApiApp } from '../shared/api/app.ts';
import type { CldistConfig } from '../shared/config.ts';
import { ConfigError, describeError, TransientError } from '../shared/errors.ts';
import { loadIdIndex, withRecordCache } from '../shared/instances/record-cache.ts';
import { createDynamoInstanceRepository } from '../shared/instances/repository.ts';
import { createBodyCache } from '../shared/instances/service.ts';
import { createDynamoLedger, type Ledger } from '../shared/ledger/ledger.ts';
import { redactPaths } from '../shared/log-safety.ts';
import { parseMirrorJob } from '../shared/messages.ts';
import { fileSecretsProvider } from '../shared/metadata/proxied.ts';
import { createSqsJobQueue, type MirrorDeps, type MirrorLogger } from '../shared/mirror/deps.ts';
import { type PollReport, runPoll } from '../shared/mirror/poller.ts';
import { trustedChecker } from '../shared/mirror/signatures.ts';
import { mirrorArtifact } from '../shared/mirror/worker.ts';
import { currentVersionUrl } from '../shared/release/layout.ts';
import { createLocalStore, createStore, sweepStaging } from '../shared/store/index.ts';
import type { ObjectStore } from '../shared/store/types.ts';
import { keyringStatus } from '../shared/verify/keyring.ts';
import { adminTokenFileName, loadOrCreateAdminToken } from './admin-token.ts';
import { startEmulators } from './emulators.ts';
import { startMetadataListener } from './metadata-listener.ts';
import { createMirrorApp } from './mirror-http.ts';
import { abortableStore, type TransferTracker } from './progress.ts';
import { configStoreModes, ensurePrivateDataDir, prepareConfigStore } from './runtime/data-dir.ts';
import { lockDataDir } from './runtime/data-dir-lock.ts';
import { startDiskGuard } from './runtime/disk-guard.ts';
import { startInstanceUpkeep } from './runtime/instance-upkeep.ts';
import type { Logger } from './runtime/log.ts';
import { createLocalNotifier, finalizedBeforeMirrored } from './runtime/notifications.ts';
import { startLocalTrust } from './runtime/trust-watch.ts';
import { listInstanceRows } from './status/instances.ts';
import { buildStatus, type PollProblem, type StatusModel } from './status/model.ts';
import { createStatusApp } from './status/routes.ts';
import { startWorkerPool, type WorkerPool } from './worker-pool.ts';

export interface ServeOptions {
  config: CldistConfig;
  /** Holds the ledger, the local mirror, instance configs and the admin token; kept across restarts. */
  dataDir: string;
  host: string;
  /** 0 picks a free port (tests); the bound one is in the handle and in the `http.listening` log line. */
  port: number;
  /** false: no HTTP server at all (`cldist mirror --once` only mirrors); the handle's url is then empty. */
  http?: boolean;
  concurrency: number;
  /** `--store s3://bucket/prefix`: overrides the config's store. Otherwise a local folder under the data dir. */
  store?: { bucket: string; prefix: string };
  /** AWS region of the clients (the stand-ins accept any); default us-east-1. */
  region?: string;
  /** The client for an S3 store; default the SDK's own chain (environment, profile, instance role). */
  s3?: S3Client;
  logger: Logger;
  tracker: TransferTracker;
  /** Notifications on the console: `json` writes one JSON line per event; default a short logger line. */
  console?: { format: 'json' | 'pretty'; writeLine: (line: string) => void };
  /** Milliseconds between polls; default `config.schedule.everyMinutes`. */
  pollEveryMs?: number;
  /** Shown on the status page. */
  demo?: boolean;
  /** Receives before a job is dead-lettered. */
  maxReceives?: number;
  /** First retry delay of a transient failure, doubling per receive. */
  baseBackoffSeconds?: number;
  /** Seconds between status page reloads. */
  refreshSeconds?: number;
  /** How long a shutdown waits for aborted transfers to wind down before closing the stand-ins anyway. */
  shutdownGraceMs?: number;
  /** Overrides `config.worker.minFreeDiskMiB` (`--min-free-mib`). */
  minFreeDiskMiB?: number;
  /** How often the free space of the data dir is measured; default 5 s. */
  diskCheckEveryMs?: number;
  clock?: () => Date;
  /** Where a rotated signing key is dropped; default `{dataDir}/trust/keyring.asc`. Watched, with the keyring files. */
  trustFile?: string;
  /** Seconds between the stat checks that back up the file watch of the trust; default 5. */
  trustStatSeconds?: number;
  /** `--metadata-listen`: also serve the metadata routes (and only those) on this address. */
  metadataListen?: { host: string; port: number };
}

export interface ServeHandle {
  /** `http://host:port`. */
  url: string;
  port: number;
  adminToken: string;
  /** Where the admin token is kept, and whether this start generated it. */
  adminTokenFile: string;
  adminTokenCreated: boolean;
  /** The metadata listener's `http://host:port`, when one was asked for. */
  metadataUrl?: string;
  store: ObjectStore;
  ledger: Ledger;
  /** Poll every channel now (also the start-up poll); resolves with the core's report. */
  pollNow(): Promise<PollReport>;
  /** The report of the last finished poll. */
  lastPoll(): PollReport | undefined;
  status(): Promise<StatusModel>;
  /**
   * Resolves when no job is queued, in flight or waiting for a retry, or when the server closes; rejects
   * while mirroring is paused for lack of disk space, which would otherwise never drain.
   */
  drain(): Promise<void>;
  /** Graceful stop: timers, intake, in-flight transfers (aborted), servers, stand-ins; idempotent. */
  close(): Promise<void>;
}

/** Instances the status page lists; a provider has many, and `cldist instances get` shows any one. */
const statusInstanceLimit = 50;

/** The core's free-text logs: its warnings and errors pass through; what the runner reports itself is quieter. */
function coreLogger(logger: Logger): MirrorLogger {
  return {
    debug: (message, attributes) => logger.debug('core', { msg: message, ...attributes }),
    info: (message, attributes) => logger.debug('core', { msg: message, ...attributes }),
    warn: (message, attributes) => logger.warn('core', { msg: message, ...attributes }),
    error: (message, attributes) =>
      message === 'poll failed'
        ? logger.debug('core', { msg: message, ...attributes })
        : logger.error('core', { msg: message, ...attributes }),
  };
}

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE') {
        reject(new ConfigError(`${host}:${port} is already in use; pass another --port`, { cause: error }));
      } else if (error.code === 'EADDRNOTAVAIL' || error.code === 'ENOTFOUND') {
        reject(new ConfigError(`cannot listen on --host ${host}: no such local address`, { cause: error }));
      } else {
        reject(error);
      }
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolvePort((server.address() as AddressInfo).port);
    });
  });
}

/**
 * The whole distributor in one process: the same cores as the Lambdas, with fauxqs for SQS and SNS,
 * dynalite on disk for the ledger, a local folder (or S3) for the mirror, a timer for the schedule, a
 * worker pool for the queue and one HTTP server for the API, the mirror and the status page.
 */
export async function startServe(options: ServeOptions): Promise<ServeHandle> {
  const { config, logger } = options;
  const clock = options.clock ?? (() => new Date());
  const dataDir = resolve(options.dataDir);
  const maxReceives = options.maxReceives ?? 5;
  const visibilityTimeoutSeconds = 120;
  const cleanups: Array<() => Promise<void>> = [];
  const runCleanups = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      await cleanup().catch((error: unknown) =>
        logger.error('shutdown.step_failed', { cause: describeError(error) }),
      );
    }
  };

  try {
    await ensurePrivateDataDir(dataDir, logger);
    const lock = lockDataDir(dataDir);
    cleanups.push(async () => lock.release());
    const trustFile = options.trustFile ?? join(dataDir, 'trust', 'keyring.asc');
    const localTrust = await startLocalTrust(config, trustFile, logger, clock, {
      statEveryMs: (options.trustStatSeconds ?? 5) * 1000,
    });
    cleanups.push(() => localTrust.stop());
    const { trust } = localTrust;
    const { token: adminToken, created: adminTokenCreated } = await loadOrCreateAdminToken(dataDir);

    const emulators = await startEmulators({
      ledgerPath: join(dataDir, 'ledger'),
      config,
      maxReceives,
      visibilityTimeoutSeconds,
      region: options.region,
      // The first crash of a streak is the alarm; the restarts of a disk still full only repeat it.
      onLedgerEvent: ({ event, ...fields }) => {
        if (event === 'ledger.thread_crashed' && 'streak' in fields && fields.streak === 1) {
          logger.error(event, fields);
        } else if (event === 'ledger.thread_recovered') {
          logger.info(event, fields);
        } else {
          logger.debug(event, fields);
        }
      },
    });
    cleanups.push(() => emulators.close());
    const { clients, resources } = emulators;

    let store: ObjectStore;
    let storeDescription: string;
    const s3Target =
      options.store ??
      (config.store.kind === 's3' ? { bucket: config.store.bucket, prefix: config.store.prefix } : undefined);
    if (s3Target !== undefined) {
      store = createStore(
        { kind: 's3', ...s3Target },
        {
          s3: options.s3 ?? clients.s3,
          partSizeBytes: config.worker.partSizeMiB * 1024 * 1024,
          partsInFlight: config.worker.partsInFlight,
        },
      );
      storeDescription = `s3://${s3Target.bucket}/${s3Target.prefix}`;
    } else {
      const root = join(dataDir, 'mirror');
      const swept = await sweepStaging(root, 0);
      if (swept > 0) logger.info('store.staging_swept', { files: swept, root });
      store = createLocalStore(root);
      storeDescription = root;
    }

    const ledger = createDynamoLedger(clients.doc, resources.tableName, { clock });
    const notifications = createLocalNotifier({
      logger,
      format: options.console?.format ?? 'pretty',
      writeLine: options.console?.writeLine ?? (() => {}),
      webhooks: config.notifications.webhooks,
      sns: clients.sns,
      topicArn: resources.topicArn,
    });
    cleanups.push(() => notifications.flush(options.shutdownGraceMs ?? 10_000));

    const mirrorDeps: MirrorDeps = {
      ledger,
      store,
      notifier: finalizedBeforeMirrored(notifications.notifier, logger),
      jobs: createSqsJobQueue(clients.sqs, resources.jobsQueueUrl),
      signatures: trustedChecker(trust),
      clock,
      logger: coreLogger(logger),
    };

    const pollProblems = new Map<string, PollProblem>();
    let polling: Promise<PollReport> | undefined;
    let lastPoll: PollReport | undefined;
    const report = (result: PollReport) => {
      for (const entry of result.results) {
        const id = `${entry.channel}/${entry.board}`;
        if (entry.outcome === 'error') {
          const channel = config.channels.find((c) => c.name === entry.channel);
          const url = channel === undefined ? '' : currentVersionUrl(channel, entry.board);
          const problem = { url, cause: entry.error ?? 'unknown', at: clock().toISOString() };
          pollProblems.set(id, problem);
          logger.warn('poll.origin_unreachable', { channel: entry.channel, board: entry.board, ...problem });
          continue;
        }
        pollProblems.delete(id);
        if (entry.outcome === 'new-release') {
          logger.info('release.detected', {
            channel: entry.channel,
            board: entry.board,
            version: entry.version,
            jobs: entry.jobsSent,
          });
        }
      }
      if (result.resent > 0) logger.info('poll.resent_unfinished', { artifacts: result.resent });
      if (result.requeuedForTrust > 0) {
        logger.info('trust.artifacts_resent', { artifacts: result.requeuedForTrust, trustFile });
      }
      for (const fingerprint of result.expiringKeys)
        logger.warn('keyring.signing_key_expiring', { fingerprint });
    };
    const pollNow = (): Promise<PollReport> => {
      if (polling !== undefined) return polling;
      polling = runPoll(mirrorDeps, config)
        .then((result) => {
          report(result);
          lastPoll = result;
          return result;
        })
        .finally(() => {
          polling = undefined;
        });
      return polling;
    };

    // The queue lived in memory: resend every open artifact. No boards means nothing is polled in this run,
    // so releases the first real poll claims below are not sent twice.
    const resumeReport = await runPoll(mirrorDeps, {
      ...config,
      boards: [],
      schedule: { ...config.schedule, stallAfterMinutes: 0 },
    });
    report(resumeReport);

    // One process serves this data dir (see lockDataDir), so its record cache and id index are as current
    // as the ledger: a config fetch costs no ledger read, known id or not, which keeps dynalite from capping
    // the fetch rate and the time of an answer from telling which ids exist.
    const ledgerInstances = createDynamoInstanceRepository(clients.doc, {
      table: resources.tableName,
      auditRetentionDays: config.api.auditRetentionDays,
      // Retried flushes are routine while the ledger restarts (a full disk); a drop is what to act on.
      onAuditError: (error, dropped) =>
        dropped > 0
          ? logger.warn('audit.entries_dropped', { dropped, cause: describeError(error) })
          : logger.debug('audit.flush_retry', { cause: describeError(error) }),
    });
    const instances = withRecordCache(ledgerInstances, { index: await loadIdIndex(ledgerInstances) });
    cleanups.push(() => instances.close());
    await prepareConfigStore(join(dataDir, 'configs'), logger);
    const configBodies = createLocalStore(join(dataDir, 'configs'), configStoreModes);
    const upkeep = startInstanceUpkeep({ instances, bodies: configBodies, config, logger, clock });
    cleanups.push(() => upkeep.stop());
    const bodyCache = createBodyCache();
    const proxySecrets =
      config.metadata.proxySecretFile === undefined
        ? undefined
        : await fileSecretsProvider(resolve(config.metadata.proxySecretFile));
    const diskGuard = startDiskGuard({
      path: dataDir,
      minFreeMiB: options.minFreeDiskMiB ?? config.worker.minFreeDiskMiB,
      checkEveryMs: options.diskCheckEveryMs,
      logger,
    });
    cleanups.push(async () => diskGuard.stop());
    await diskGuard.check();

    let app: Hono | undefined;
    let port = 0;
    let url = '';
    if (options.http !== false) {
      const server = createAdaptorServer({
        fetch: (request, env) =>
          app === undefined ? new Response('starting\n', { status: 503 }) : app.fetch(request, env),
      }) as Server;
      port = await listen(server, options.host, options.port);
      url = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`;
      cleanups.push(
        () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeIdleConnections();
            setTimeout(() => server.closeAllConnections(), 2000).unref();
          }),
      );
    }
    let closing = false;
    const pool: WorkerPool = startWorkerPool({
      sqs: clients.sqs,
      queueUrl: resources.jobsQueueUrl,
      concurrency: options.concurrency,
      logger,
      visibilityTimeoutSeconds,
      baseBackoffSeconds: options.baseBackoffSeconds ?? 5,
      gate: (signal) => diskGuard.whenRoomy(signal),
      handleJob: async (body, context) => {
        const job = parseMirrorJob(body);
        const label = `${job.channel}/${job.version}/${job.artifact}`;
        let transfer: ReturnType<TransferTracker['begin']> | undefined;
        try {
          const result = await mirrorArtifact(
            job,
            {
              ...mirrorDeps,
              store: abortableStore(store, context.signal),
            },
            config,
            {
              signal: context.signal,
              onProgress: (bytes, total) => {
                transfer ??= options.tracker.begin(label);
                transfer.advance(bytes, total);
                if (total !== undefined && bytes >= total) {
                  transfer.end('downloaded');
                  transfer = undefined;
                }
              },
            },
          );
          transfer?.end('downloaded');
          transfer = undefined;
          const ref = {
            channel: job.channel,
            board: job.board,
            version: job.version,
            artifact: job.artifact,
          };
          if (result.outcome === 'verified') {
            const record = await ledger.getArtifact(ref);
            logger.info('artifact.verified', {
              ...ref,
              bytes: result.bytes,
              signer: record?.signingKeyFingerprint,
              signed: record?.signatureCreated,
            });
          } else if (result.outcome === 'missing') {
            logger.warn('artifact.missing', ref);
          } else if (result.outcome === 'awaiting-trust') {
            const record = await ledger.getArtifact(ref);
            logger.warn('artifact.awaiting_trust', { ...ref, keyId: record?.awaitingIssuer, trustFile });
          }
        } finally {
          transfer?.end('discarded');
        }
      },
    });
    cleanups.push(async () => {
      const stopped = pool.stop();
      const grace = options.shutdownGraceMs ?? 10_000;
      let timer: NodeJS.Timeout | undefined;
      const late = await Promise.race([
        stopped.then(() => false),
        new Promise<boolean>((done) => {
          timer = setTimeout(() => done(true), grace);
        }),
      ]);
      clearTimeout(timer);
      if (late) logger.warn('shutdown.transfers_still_running', { graceMs: grace });
    });

    const apiConfig: CldistConfig = {
      ...config,
      api: { ...config.api, host: options.host, port, publicBaseUrl: config.api.publicBaseUrl ?? url },
    };

    const status = () =>
      buildStatus({
        ledger,
        channels: config.channels,
        boards: config.boards,
        keyring: () => keyringStatus(trust.peek().keyring, clock(), config.keyring.expiryWarningDays),
        keyWarningDays: config.keyring.expiryWarningDays,
        recentEvents: () => notifications.recent(),
        pollProblem: (channel, board) => pollProblems.get(`${channel}/${board}`),
        worker: () => ({ inFlight: pool.inFlight, concurrency: options.concurrency }),
        demo: options.demo ?? false,
        mirrorBaseUrl: `${url}/mirror`,
        instances: () => listInstanceRows(instances, statusInstanceLimit),
        disk: () => diskGuard.state(),
        clock,
      });

    const root = new Hono();
    root.route(
      '/',
      createStatusApp({
        adminToken,
        getStatus: status,
        refreshSeconds: options.refreshSeconds ?? 5,
        publicBaseUrl: config.api.publicBaseUrl,
      }),
    );
    // One JSON line per unexpected error, with absolute paths redacted, and never a stack trace on stderr.
    const internalError = (event: string) => (error: unknown) =>
      logger.error(event, { cause: redactPaths(describeError(error)) });
    root.onError((error, c) => {
      internalError('http.internal_error')(error);
      return c.text('internal error\n', 500);
    });
    root.route('/', createMirrorApp(store, { onError: internalError('mirror.internal_error') }));
    root.route(
      '/',
      createApiApp(
        {
          instances,
          bodies: configBodies,
          bodyCache,
          clock,
          adminAuth: { kind: 'bearer', token: adminToken },
          releases: { ledger, jobs: mirrorDeps.jobs },
          countRefused: upkeep.countRefused,
          onInternalError: (error) =>
            logger.error('api.internal_error', { cause: redactPaths(describeError(error)) }),
          ...(proxySecrets === undefined ? {} : { proxySecrets }),
        },
        apiConfig,
      ),
    );
    app = root;
    const metadata =
      options.metadataListen === undefined || options.http === false
        ? undefined
        : await startMetadataListener({
            ...options.metadataListen,
            deps: { instances, bodies: configBodies, bodyCache, clock },
            config,
            logger,
          });
    if (metadata !== undefined) cleanups.push(() => metadata.close());

    const everyMs = options.pollEveryMs ?? config.schedule.everyMinutes * 60_000;
    let pollTimer: NodeJS.Timeout | undefined;
    const schedule = () => {
      pollTimer = setTimeout(() => {
        if (diskGuard.paused) {
          logger.debug('poll.skipped_low_disk', { ...diskGuard.state() });
          if (!closing) schedule();
          return;
        }
        pollNow()
          .catch((error: unknown) => logger.error('poll.failed', { cause: describeError(error) }))
          .finally(() => {
            if (!closing) schedule();
          });
      }, everyMs);
    };
    cleanups.push(async () => {
      closing = true;
      if (pollTimer !== undefined) clearTimeout(pollTimer);
      await polling?.catch(() => undefined);
    });

    if (options.http === false) {
      logger.info('mirror.started', { store: storeDescription, dataDir, concurrency: options.concurrency });
    } else {
      logger.info('http.listening', {
        url,
        port,
        status: `${url}/`,
        mirror: `${url}/mirror/{channel}/{board}/`,
        store: storeDescription,
        dataDir,
        concurrency: options.concurrency,
      });
    }
    await pollNow();
    schedule();

    const drain = async () => {
      for (let quietChecks = 0; quietChecks < 2 && !closing; ) {
        if (diskGuard.paused) {
          throw new TransientError('low-disk', 'mirroring is paused: the data dir is low on free space');
        }
        const attributes = await clients.sqs.send(
          new GetQueueAttributesCommand({
            QueueUrl: resources.jobsQueueUrl,
            AttributeNames: [
              'ApproximateNumberOfMessages',
              'ApproximateNumberOfMessagesNotVisible',
              'ApproximateNumberOfMessagesDelayed',
            ],
          }),
        );
        const queued = Object.values(attributes.Attributes ?? {}).reduce((sum, n) => sum + Number(n), 0);
        quietChecks = queued === 0 && pool.inFlight === 0 ? quietChecks + 1 : 0;
        await new Promise((done) => setTimeout(done, 200));
      }
    };

    let closed: Promise<void> | undefined;
    return {
      url,
      port,
      adminToken,
      adminTokenFile: join(dataDir, adminTokenFileName),
      adminTokenCreated,
      ...(metadata === undefined ? {} : { metadataUrl: metadata.url }),
      store,
      ledger,
      pollNow,
      lastPoll: () => lastPoll,
      status,
      drain,
      close() {
        closed ??= (async () => {
          logger.info('shutdown.started', {});
          closing = true;
          await runCleanups();
          logger.info('shutdown.done', {});
        })();
        return closed;
      },
    };
  } catch (error) {
    await runCleanups();
    throw error;
  }
}
