import {
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
  type ServerSideEncryption,
} from '@aws-sdk/client-s3';
import { ConfigError, TransientError } from '../errors.ts';
import { assertValidKey, assertValidPrefix } from './keys.ts';
import { assertValidRange, RangeNotSatisfiableError } from './range.ts';
import { errorName, httpStatus, isS3NotFound, mapS3Error } from './s3-errors.ts';
import { MultipartUpload } from './s3-multipart.ts';
import type { ObjectStore, StagedUpload, StoredStream } from './types.ts';

export { isS3NotFound, mapS3Error } from './s3-errors.ts';

const MiB = 1024 * 1024;
/** S3 refuses parts below 5 MiB (except the last) and more than 10 000 parts. */
export const minPartSizeBytes = 5 * MiB;

export interface S3StoreOptions {
  bucket: string;
  /** Put in front of every key (a missing trailing "/" is added), so one bucket can hold several stores. */
  prefix?: string;
  /** Default 8 MiB. Memory per upload is about partSizeBytes × (partsInFlight + 1). */
  partSizeBytes?: number;
  /** Default 4. */
  partsInFlight?: number;
  sse?: { kmsKeyId?: string } | 'AES256';
}

type Encryption = { ServerSideEncryption?: ServerSideEncryption; SSEKMSKeyId?: string };

/** The validated options every operation of one store shares. */
interface S3Context {
  s3: S3Client;
  bucket: string;
  prefix: string;
  partSize: number;
  partsInFlight: number;
  encryption: Encryption;
}

type HeadResult = { size: number; lastModified: Date; etag?: string };

function parseTotalSize(contentRange: string | undefined): number | undefined {
  const match = contentRange === undefined ? null : /\/(\d+)$/.exec(contentRange);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

function isAsyncIterable(value: unknown): value is AsyncIterable<Uint8Array> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}

async function* emptyBody(): AsyncIterable<Uint8Array> {}

function s3Context(s3: S3Client, options: S3StoreOptions): S3Context {
  const prefix =
    options.prefix === undefined || options.prefix === '' ? '' : options.prefix.replace(/\/*$/, '/');
  const partSize = options.partSizeBytes ?? 8 * MiB;
  const partsInFlight = options.partsInFlight ?? 4;
  if (!Number.isSafeInteger(partSize) || partSize < minPartSizeBytes) {
    throw new ConfigError(
      `S3 store partSizeBytes must be an integer of at least ${minPartSizeBytes} (5 MiB)`,
    );
  }
  if (!Number.isSafeInteger(partsInFlight) || partsInFlight < 1) {
    throw new ConfigError('S3 store partsInFlight must be a positive integer');
  }
  const encryption: Encryption =
    options.sse === undefined
      ? {}
      : options.sse === 'AES256'
        ? { ServerSideEncryption: 'AES256' }
        : { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: options.sse.kmsKeyId };
  return { s3, bucket: options.bucket, prefix, partSize, partsInFlight, encryption };
}

/**
 * The S3 adapter. Staged writes are multipart uploads: the object exists only after
 * CompleteMultipartUpload, so an unverified artifact is never visible, and a killed worker leaves only an
 * incomplete upload that the bucket's AbortIncompleteMultipartUpload lifecycle rule reaps.
 */
export function createS3Store(s3: S3Client, options: S3StoreOptions): ObjectStore {
  const ctx = s3Context(s3, options);
  const head = (key: string) => headObject(ctx, key);
  return {
    beginUpload: (key, uploadOptions) => beginUpload(ctx, key, uploadOptions?.contentType),
    put: (key, body, putOptions) => putObject(ctx, key, body, putOptions?.contentType),
    get: (key) => getObject(ctx, key),
    getStream: (key, range) => getObjectStream(ctx, key, range, head),
    head,
    list: (listPrefix) => listKeys(ctx, listPrefix),
    delete: (key) => deleteObject(ctx, key),
  };
}

async function headObject(ctx: S3Context, key: string): Promise<HeadResult | undefined> {
  assertValidKey(key);
  try {
    const got = await ctx.s3.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: `${ctx.prefix}${key}` }));
    const result: HeadResult = {
      size: got.ContentLength ?? 0,
      lastModified: got.LastModified ?? new Date(0),
    };
    if (got.ETag !== undefined) result.etag = got.ETag;
    return result;
  } catch (error) {
    if (isS3NotFound(error)) return undefined;
    throw mapS3Error(error, 'HeadObject', key);
  }
}

async function beginUpload(
  ctx: S3Context,
  key: string,
  contentType: string | undefined,
): Promise<StagedUpload> {
  assertValidKey(key);
  const fullKey = `${ctx.prefix}${key}`;
  let uploadId: string | undefined;
  try {
    const created = await ctx.s3.send(
      new CreateMultipartUploadCommand({
        Bucket: ctx.bucket,
        Key: fullKey,
        ContentType: contentType,
        ...ctx.encryption,
      }),
    );
    uploadId = created.UploadId;
  } catch (error) {
    throw mapS3Error(error, 'CreateMultipartUpload', key);
  }
  if (uploadId === undefined) {
    throw new TransientError('store-unavailable', `S3 CreateMultipartUpload of ${key} returned no UploadId`);
  }
  return new MultipartUpload(ctx.s3, ctx.bucket, fullKey, key, uploadId, ctx.partSize, ctx.partsInFlight);
}

async function putObject(
  ctx: S3Context,
  key: string,
  body: string | Uint8Array,
  contentType: string | undefined,
): Promise<void> {
  assertValidKey(key);
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  try {
    await ctx.s3.send(
      new PutObjectCommand({
        Bucket: ctx.bucket,
        Key: `${ctx.prefix}${key}`,
        Body: bytes,
        ContentLength: bytes.byteLength,
        ContentType: contentType,
        ...ctx.encryption,
      }),
    );
  } catch (error) {
    throw mapS3Error(error, 'PutObject', key);
  }
}

async function getObject(ctx: S3Context, key: string): Promise<Uint8Array | undefined> {
  assertValidKey(key);
  try {
    const got = await ctx.s3.send(new GetObjectCommand({ Bucket: ctx.bucket, Key: `${ctx.prefix}${key}` }));
    return got.Body === undefined ? new Uint8Array() : await got.Body.transformToByteArray();
  } catch (error) {
    if (isS3NotFound(error)) return undefined;
    throw mapS3Error(error, 'GetObject', key);
  }
}

async function getObjectStream(
  ctx: S3Context,
  key: string,
  range: { start: number; end?: number } | undefined,
  head: (key: string) => Promise<HeadResult | undefined>,
): Promise<StoredStream | undefined> {
  assertValidKey(key);
  if (range !== undefined) assertValidRange(key, range);
  const header = range === undefined ? undefined : `bytes=${range.start}-${range.end ?? ''}`;
  let got: GetObjectCommandOutput;
  try {
    got = await ctx.s3.send(
      new GetObjectCommand({ Bucket: ctx.bucket, Key: `${ctx.prefix}${key}`, Range: header }),
    );
  } catch (error) {
    if (isS3NotFound(error)) return undefined;
    if (range !== undefined && (errorName(error) === 'InvalidRange' || httpStatus(error) === 416)) {
      const found = await head(key);
      if (found === undefined) return undefined;
      throw new RangeNotSatisfiableError(key, range.start, found.size);
    }
    throw mapS3Error(error, 'GetObject', key);
  }
  const size = got.ContentLength ?? 0;
  const body = got.Body;
  if (!isAsyncIterable(body) && size > 0) {
    throw new TransientError('store-unavailable', `S3 GetObject of ${JSON.stringify(key)} returned no body`);
  }
  const stream: StoredStream = {
    body: isAsyncIterable(body) ? body : emptyBody(),
    size,
    totalSize: parseTotalSize(got.ContentRange) ?? size,
    lastModified: got.LastModified ?? new Date(0),
  };
  if (got.ETag !== undefined) stream.etag = got.ETag;
  return stream;
}

async function listKeys(ctx: S3Context, listPrefix: string): Promise<string[]> {
  assertValidPrefix(listPrefix);
  const keys: string[] = [];
  let token: string | undefined;
  do {
    try {
      const page = await ctx.s3.send(
        new ListObjectsV2Command({
          Bucket: ctx.bucket,
          Prefix: `${ctx.prefix}${listPrefix}`,
          ContinuationToken: token,
        }),
      );
      for (const object of page.Contents ?? []) {
        if (object.Key !== undefined) keys.push(object.Key.slice(ctx.prefix.length));
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } catch (error) {
      throw mapS3Error(error, 'ListObjectsV2', listPrefix);
    }
  } while (token !== undefined);
  return keys;
}

async function deleteObject(ctx: S3Context, key: string): Promise<void> {
  assertValidKey(key);
  try {
    await ctx.s3.send(new DeleteObjectCommand({ Bucket: ctx.bucket, Key: `${ctx.prefix}${key}` }));
  } catch (error) {
    if (isS3NotFound(error)) return;
    throw mapS3Error(error, 'DeleteObject', key);
  }
}
