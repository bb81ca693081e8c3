import { join } from 'node:path';
import type { TrustedKeyring } from '../../shared/trust/trusted-keyring.ts';
import { loadOrCreateAdminToken } from '../admin-token.ts';
import { type LedgerStandIn, type LedgerStandInOptions, startLedgerStandIn } from '../emulators.ts';
import { ensurePrivateDataDir } from '../runtime/data-dir.ts';
import { lockDataDir } from '../runtime/data-dir-lock.ts';
import { type DiskGuard, startDiskGuard } from '../runtime/disk-guard.ts';
import type { Logger } from '../runtime/log.ts';
import type { LocalNotifications } from '../runtime/notifications.ts';
import type { QueueSide } from './queue.ts';
import type { ServeContext } from './types.ts';

/** Seconds a received job stays hidden; the pool extends it for as long as the job runs. */
export const visibilityTimeoutSeconds = 120;

export interface Foundation {
  trust: TrustedKeyring;
  trustFile: string;
  adminToken: string;
  adminTokenCreated: boolean;
  /** dynalite, with the table, started with the foundation. */
  ledger: LedgerStandIn;
  /** fauxqs, with the queues and the topic: started with the foundation, or on demand (`mirror --once`). */
  queue: QueueSide;
  notifications: LocalNotifications;
  /** Pauses mirroring (and polls) while the data dir is low on free space. */
  diskGuard: DiskGuard;
}

/**
 * What everything else stands on: the private data dir (locked to this process), the watched trust, the
 * admin token, the stand-ins (queues, topic and table created as the stack creates them), the
 * notifications and the disk guard. Each part is stopped by the lifecycle in reverse order.
 */
export async function openFoundation(context: ServeContext): Promise<Foundation> {
  const { options, config, logger, clock, dataDir, lifecycle } = context;
  await ensurePrivateDataDir(dataDir, logger);
  const lock = lockDataDir(dataDir);
  lifecycle.defer(async () => lock.release());
  const trustFile = options.trustFile ?? join(dataDir, 'trust', 'keyring.asc');
  // The ledger's thread starts first, and opens LevelDB while this thread loads the modules and the keys.
  const ledgerStarting = startLedgerStandIn({
    ledgerPath: join(dataDir, 'ledger'),
    config,
    region: options.region,
    onLedgerEvent: ledgerEventLogger(logger),
  });
  const trustStarting = import('../runtime/trust-watch.ts').then(({ startLocalTrust }) =>
    startLocalTrust(config, trustFile, logger, clock, {
      statEveryMs: (options.trustStatSeconds ?? 5) * 1000,
    }),
  );
  const [trustStarted, ledgerStarted] = await Promise.allSettled([trustStarting, ledgerStarting]);
  if (trustStarted.status === 'fulfilled') lifecycle.defer(() => trustStarted.value.stop());
  if (ledgerStarted.status === 'fulfilled') lifecycle.defer(() => ledgerStarted.value.close());
  if (trustStarted.status === 'rejected') throw trustStarted.reason;
  if (ledgerStarted.status === 'rejected') throw ledgerStarted.reason;
  const localTrust = trustStarted.value;
  const ledger = ledgerStarted.value;
  const { token: adminToken, created: adminTokenCreated } = await loadOrCreateAdminToken(dataDir);
  const queueOptions = {
    config,
    maxReceives: config.queue.retry.maxReceives,
    visibilityTimeoutSeconds,
    region: options.region,
  };
  const [{ openQueueSide }, { createLocalNotifier }] = await Promise.all([
    import('./queue.ts'),
    import('../runtime/notifications.ts'),
  ]);
  const queue = await openQueueSide(queueOptions, lifecycle, options.queue ?? 'eager');
  const notifications = createLocalNotifier({
    logger,
    format: options.console?.format ?? 'pretty',
    writeLine: options.console?.writeLine ?? (() => {}),
    webhooks: config.notifications.webhooks,
    topic: queue.topic,
  });
  lifecycle.defer(() => notifications.flush(options.shutdownGraceMs ?? 10_000));
  const diskGuard = startDiskGuard({
    path: dataDir,
    minFreeMiB: options.minFreeDiskMiB ?? config.worker.minFreeDiskMiB,
    checkEveryMs: options.diskCheckEveryMs,
    logger,
  });
  lifecycle.defer(async () => diskGuard.stop());
  await diskGuard.check();
  const trust = localTrust.trust;
  return { trust, trustFile, adminToken, adminTokenCreated, ledger, queue, notifications, diskGuard };
}

/** The first crash of a streak is the alarm; the restarts of a disk still full only repeat it. */
function ledgerEventLogger(logger: Logger): NonNullable<LedgerStandInOptions['onLedgerEvent']> {
  return ({ event, ...fields }) => {
    if (event === 'ledger.thread_crashed' && 'streak' in fields && fields.streak === 1) {
      logger.error(event, fields);
    } else if (event === 'ledger.compaction_failed') {
      logger.warn(event, fields);
    } else if (event === 'ledger.thread_recovered' || event === 'ledger.compacted') {
      logger.info(event, fields);
    } else {
      logger.debug(event, fields);
    }
  };
}
