import type { CldistConfig } from '../config.ts';

export type StoreConfig = CldistConfig['store'];
export type S3StoreConfig = Extract<StoreConfig, { kind: 's3' }>;

/** The deployed mirror bucket, under the config's prefix when the config names an S3 store. */
export function deployedMirrorStore(config: Pick<CldistConfig, 'store'>, bucket: string): S3StoreConfig {
  return { kind: 's3', bucket, prefix: config.store.kind === 's3' ? config.store.prefix : '' };
}

/**
 * Where the mirror lives, decided once for every host: a deployed bucket wins (keeping the config's
 * prefix), then an S3 store in the config, then a local folder (the host's, else the config's path). The
 * CDK stack resolves the bucket the same way, so the bucket the functions write is the one it grants.
 */
export function resolveMirrorStore(
  config: Pick<CldistConfig, 'store'>,
  where: { mirrorBucket?: string; localMirrorRoot?: string },
): StoreConfig {
  if (where.mirrorBucket !== undefined) return deployedMirrorStore(config, where.mirrorBucket);
  if (config.store.kind === 's3') return config.store;
  return { kind: 'local', path: where.localMirrorRoot ?? config.store.path };
}

/** `s3://bucket/prefix` or the folder: for start-up logs. */
export function describeStore(store: StoreConfig): string {
  return store.kind === 's3' ? `s3://${store.bucket}/${store.prefix}` : store.path;
}
