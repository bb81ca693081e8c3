import { join } from 'node:path';
import type { CldistConfig } from '../../shared/config.ts';
import { createMirrorRuntime, type MirrorRuntime } from '../../shared/mirror/runtime.ts';
import { describeStore, resolveMirrorStore } from '../../shared/mirror/store-location.ts';
import { sweepStaging } from '../../shared/store/index.ts';
import type { TrustedKeyring } from '../../shared/trust/trusted-keyring.ts';
import type { Emulators } from '../emulators.ts';
import type { Logger } from '../runtime/log.ts';
import { finalizedBeforeMirrored, type LocalNotifications } from '../runtime/notifications.ts';
import type { ServeOptions } from './types.ts';

export interface LocalMirror {
  runtime: MirrorRuntime;
  /** `s3://bucket/prefix` or the folder, for the start-up log. */
  storeDescription: string;
}

/** `--store s3://…` replaces the config's store; without either, the mirror is `{dataDir}/mirror`. */
function withStoreFlag(config: CldistConfig, flag: ServeOptions['store']): CldistConfig {
  return flag === undefined ? config : { ...config, store: { kind: 's3', ...flag } };
}

/**
 * The mirror runtime of this machine: the shared assembly over the stand-ins, with the host's watched trust
 * and its notifications (console, webhooks, status page and the stand-in topic). A local mirror folder is
 * swept of staged files first: one process owns the data dir, so any there were left by a killed run.
 */
export async function openLocalMirror(options: {
  serve: Pick<ServeOptions, 'config' | 'store' | 's3'>;
  dataDir: string;
  emulators: Pick<Emulators, 'clients' | 'resources'>;
  trust: TrustedKeyring;
  notifications: LocalNotifications;
  logger: Logger;
  clock: () => Date;
}): Promise<LocalMirror> {
  const { emulators, logger } = options;
  const config = withStoreFlag(options.serve.config, options.serve.store);
  const localMirrorRoot = join(options.dataDir, 'mirror');
  const store = resolveMirrorStore(config, { localMirrorRoot });
  if (store.kind === 'local') {
    const swept = await sweepStaging(store.path, 0);
    if (swept > 0) logger.info('store.staging_swept', { files: swept, root: store.path });
  }
  const { clients, resources } = emulators;
  const runtime = await createMirrorRuntime({
    config,
    resources: { ...resources, localMirrorRoot },
    clients: { ...clients, s3: options.serve.s3 ?? clients.s3 },
    logger,
    clock: options.clock,
    trust: options.trust,
    decorate: (deps) => ({
      ...deps,
      notifier: finalizedBeforeMirrored(options.notifications.notifier, logger),
    }),
  });
  return { runtime, storeDescription: describeStore(store) };
}
