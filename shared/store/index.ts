import { resolve } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import type { CldistConfig } from '../config.ts';
import { ConfigError } from '../errors.ts';
import { createLocalStore } from './local-store.ts';
import type { ObjectStore } from './types.ts';

export { assertValidKey, assertValidPrefix } from './keys.ts';
export { createLocalStore, type LocalStoreModes, sweepStaging } from './local-store.ts';
export { RangeNotSatisfiableError } from './range.ts';
export type { S3StoreOptions } from './s3-store.ts';
export type { ObjectStore, StagedUpload, StoredStream } from './types.ts';

export interface StoreDeps {
  /** Required when the config names an S3 store. */
  s3?: S3Client;
  partSizeBytes: number;
  partsInFlight: number;
  sse?: { kmsKeyId?: string } | 'AES256';
}

/**
 * The one switch between deployment shapes: callers hold an ObjectStore and never learn which adapter
 * they got. A local path is taken relative to the working directory, as a user typing it would expect.
 * The S3 adapter (and the S3 SDK under it) is loaded only for an S3 store: `s3-store.ts` exports it.
 */
export async function createStore(config: CldistConfig['store'], deps: StoreDeps): Promise<ObjectStore> {
  if (config.kind === 'local') return createLocalStore(resolve(process.cwd(), config.path));
  if (deps.s3 === undefined) {
    throw new ConfigError(`store.kind is "s3" (bucket ${config.bucket}) but no S3 client was given`);
  }
  const { createS3Store } = await import('./s3-store.ts');
  return createS3Store(deps.s3, {
    bucket: config.bucket,
    prefix: config.prefix,
    partSizeBytes: deps.partSizeBytes,
    partsInFlight: deps.partsInFlight,
    ...(deps.sse === undefined ? {} : { sse: deps.sse }),
  });
}
