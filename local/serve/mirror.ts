import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { awsClientConfig } from '../../shared/aws-client-config.ts';
import type { CldistConfig } from '../../shared/config.ts';
import { createMirrorRuntime, type MirrorRuntime } from '../../shared/mirror/runtime.ts';
import { describeStore, resolveMirrorStore, type StoreConfig } from '../../shared/mirror/store-location.ts';
import { sweepStaging } from '../../shared/store/local-store.ts';
import { finalizedBeforeMirrored } from '../runtime/notifications.ts';
import type { Foundation } from './foundation.ts';
import type { ServeContext, ServeOptions } from './types.ts';

export interface LocalMirror {
  runtime: MirrorRuntime;
  /** `s3://bucket/prefix` or the folder, for the start-up log. */
  storeDescription: string;
}

/** `--store s3://…` replaces the config's store; without either, the mirror is `{dataDir}/mirror`. */
function withStoreFlag(config: CldistConfig, flag: ServeOptions['store']): CldistConfig {
  return flag === undefined ? config : { ...config, store: { kind: 's3', ...flag } };
}

/** The S3 SDK is loaded only for an S3 store: a local folder never needs it. */
async function s3ClientFor(store: StoreConfig, context: ServeContext): Promise<{ s3?: S3Client }> {
  const { options, lifecycle } = context;
  if (options.s3 !== undefined) return { s3: options.s3 };
  if (store.kind !== 's3') return {};
  const { S3Client } = await import('@aws-sdk/client-s3');
  const s3 = new S3Client(awsClientConfig(undefined, options.region));
  lifecycle.defer(async () => s3.destroy());
  return { s3 };
}

/**
 * The mirror runtime of this machine: the shared assembly over the stand-ins, with the host's watched trust
 * and its notifications (console, webhooks, status page and the stand-in topic). A local mirror folder is
 * swept of staged files first: one process owns the data dir, so any there were left by a killed run.
 */
export async function openLocalMirror(
  context: ServeContext,
  base: Pick<Foundation, 'ledger' | 'queue' | 'trust' | 'notifications'>,
): Promise<LocalMirror> {
  const { options, logger } = context;
  const config = withStoreFlag(context.config, options.store);
  const localMirrorRoot = join(context.dataDir, 'mirror');
  const store = resolveMirrorStore(config, { localMirrorRoot });
  if (store.kind === 'local') {
    const swept = await sweepStaging(store.path, 0);
    if (swept > 0) logger.info('store.staging_swept', { files: swept, root: store.path });
  }
  const runtime = await createMirrorRuntime({
    config,
    resources: { tableName: base.ledger.tableName, localMirrorRoot },
    clients: { doc: base.ledger.clients.doc, ...(await s3ClientFor(store, context)) },
    logger,
    clock: context.clock,
    trust: base.trust,
    decorate: (deps) => ({
      ...deps,
      jobs: base.queue.jobs,
      notifier: finalizedBeforeMirrored(base.notifications.notifier, logger),
    }),
  });
  return { runtime, storeDescription: describeStore(store) };
}
