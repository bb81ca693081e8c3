import { join } from 'node:path';
import type { TrustedKeyring } from '../../shared/trust/trusted-keyring.ts';
import { loadOrCreateAdminToken } from '../admin-token.ts';
import { type LedgerStandIn, startLedgerStandIn } from '../emulators.ts';
import { type DiskGuard, startDiskGuard } from '../runtime/disk-guard.ts';
import type { LocalNotifications } from '../runtime/notifications.ts';
import { claimDataDir } from './claim.ts';
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
  const claim = options.claim ?? (await claimDataDir(dataDir, logger));
  lifecycle.defer(() => claim.release());
  const trustFile = options.trustFile ?? join(dataDir, 'trust', 'keyring.asc');
  // The claim started the ledger's thread, which opens LevelDB while this one loads the modules and keys.
  const ledgerStarting = startLedgerStandIn({
    ledgerPath: claim.ledgerPath,
    thread: claim.thread,
    config,
    region: options.region,
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
