import { join } from 'node:path';
import type { TrustedKeyring } from '../../shared/trust/trusted-keyring.ts';
import { loadOrCreateAdminToken } from '../admin-token.ts';
import { type Emulators, startEmulators } from '../emulators.ts';
import { ensurePrivateDataDir } from '../runtime/data-dir.ts';
import { lockDataDir } from '../runtime/data-dir-lock.ts';
import { type DiskGuard, startDiskGuard } from '../runtime/disk-guard.ts';
import type { Logger } from '../runtime/log.ts';
import { createLocalNotifier, type LocalNotifications } from '../runtime/notifications.ts';
import { startLocalTrust } from '../runtime/trust-watch.ts';
import type { ServeContext } from './types.ts';

/** Seconds a received job stays hidden; the pool extends it for as long as the job runs. */
export const visibilityTimeoutSeconds = 120;

export interface Foundation {
  trust: TrustedKeyring;
  trustFile: string;
  adminToken: string;
  adminTokenCreated: boolean;
  emulators: Emulators;
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
  const localTrust = await startLocalTrust(config, trustFile, logger, clock, {
    statEveryMs: (options.trustStatSeconds ?? 5) * 1000,
  });
  lifecycle.defer(() => localTrust.stop());
  const { token: adminToken, created: adminTokenCreated } = await loadOrCreateAdminToken(dataDir);
  const emulators = await startEmulators({
    ledgerPath: join(dataDir, 'ledger'),
    config,
    maxReceives: config.queue.retry.maxReceives,
    visibilityTimeoutSeconds,
    region: options.region,
    onLedgerEvent: ledgerEventLogger(logger),
  });
  lifecycle.defer(() => emulators.close());
  const notifications = createLocalNotifier({
    logger,
    format: options.console?.format ?? 'pretty',
    writeLine: options.console?.writeLine ?? (() => {}),
    webhooks: config.notifications.webhooks,
    sns: emulators.clients.sns,
    topicArn: emulators.resources.topicArn,
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
  return { trust, trustFile, adminToken, adminTokenCreated, emulators, notifications, diskGuard };
}

/** The first crash of a streak is the alarm; the restarts of a disk still full only repeat it. */
function ledgerEventLogger(
  logger: Logger,
): NonNullable<Parameters<typeof startEmulators>[0]['onLedgerEvent']> {
  return ({ event, ...fields }) => {
    if (event === 'ledger.thread_crashed' && 'streak' in fields && fields.streak === 1) {
      logger.error(event, fields);
    } else if (event === 'ledger.thread_recovered') {
      logger.info(event, fields);
    } else {
      logger.debug(event, fields);
    }
  };
}
