import {
  AbortMultipartUploadCommand,
  type CompletedPart,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
  type ServerSideEncryption,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { ConfigError, PermanentError, TransientError } from '../errors.ts';
import { assertValidKey, assertValidPrefix } from './keys.ts';
import { assertValidRange, RangeNotSatisfiableError } from './range.ts';
import { singleFlight } from './single-flight.ts';
import type { ObjectStore, StagedUpload, StoredStream } from './types.ts';

const MiB = 1024 * 1024;
/** S3 refuses parts below 5 MiB (except the last) and more than 10 000 parts. */
export const minPartSizeBytes = 5 * MiB;
const maxParts = 10_000;

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

const transientNames = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'RequestTimeout',
  'RequestTimeTooSkewed',
  'InternalError',
  'ServiceUnavailable',
  'TooManyRequestsException',
]);

function httpStatus(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null || !('$metadata' in error)) return undefined;
  const metadata = (error as { $metadata?: { httpStatusCode?: number } }).$metadata;
  return metadata?.httpStatusCode;
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : String(error);
}

/**
 * S3 answers "not there" as NoSuchKey for GET and a bare 404 (NotFound) for HEAD. A missing bucket is a
 * deployment fault, not a missing object, so it must not read as "absent".
 */
export function isS3NotFound(error: unknown): boolean {
  const name = errorName(error);
  if (name === 'NoSuchBucket' || name === 'NoSuchUpload') return false;
  return name === 'NoSuchKey' || name === 'NotFound' || httpStatus(error) === 404;
}

/**
 * Sort an S3 failure into retry-or-not by class, so handlers never parse messages: throttling, 5xx and
 * anything that never got an HTTP answer (network) is transient; any other 4xx is a permanent refusal.
 */
export function mapS3Error(error: unknown, action: string, key: string): Error {
  const name = errorName(error);
  const status = httpStatus(error);
  const what = `S3 ${action} of ${JSON.stringify(key)} failed: ${name}`;
  if (error instanceof PermanentError || error instanceof TransientError) return error;
  if (transientNames.has(name) || status === undefined || status >= 500 || status === 429) {
    return new TransientError('store-unavailable', what, { cause: error });
  }
  if (name === 'AccessDenied' || name === 'InvalidAccessKeyId' || status === 403) {
    return new PermanentError('store-denied', what, { cause: error });
  }
  return new PermanentError('store-rejected', what, { cause: error });
}

function parseTotalSize(contentRange: string | undefined): number | undefined {
  const match = contentRange === undefined ? null : /\/(\d+)$/.exec(contentRange);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

function isAsyncIterable(value: unknown): value is AsyncIterable<Uint8Array> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}

async function* emptyBody(): AsyncIterable<Uint8Array> {}

/**
 * The S3 adapter. Staged writes are multipart uploads: the object exists only after
 * CompleteMultipartUpload, so an unverified artifact is never visible, and a killed worker leaves only an
 * incomplete upload that the bucket's AbortIncompleteMultipartUpload lifecycle rule reaps.
 */
export function createS3Store(s3: S3Client, options: S3StoreOptions): ObjectStore {
  const bucket = options.bucket;
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
  const encryption: { ServerSideEncryption?: ServerSideEncryption; SSEKMSKeyId?: string } =
    options.sse === undefined
      ? {}
      : options.sse === 'AES256'
        ? { ServerSideEncryption: 'AES256' }
        : { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: options.sse.kmsKeyId };

  const full = (key: string) => `${prefix}${key}`;

  async function head(key: string): Promise<{ size: number; lastModified: Date; etag?: string } | undefined> {
    assertValidKey(key);
    try {
      const got = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: full(key) }));
      const result: { size: number; lastModified: Date; etag?: string } = {
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

  return {
    async beginUpload(key, uploadOptions) {
      assertValidKey(key);
      let uploadId: string | undefined;
      try {
        const created = await s3.send(
          new CreateMultipartUploadCommand({
            Bucket: bucket,
            Key: full(key),
            ContentType: uploadOptions?.contentType,
            ...encryption,
          }),
        );
        uploadId = created.UploadId;
      } catch (error) {
        throw mapS3Error(error, 'CreateMultipartUpload', key);
      }
      if (uploadId === undefined) {
        throw new TransientError(
          'store-unavailable',
          `S3 CreateMultipartUpload of ${key} returned no UploadId`,
        );
      }
      return new MultipartUpload(s3, bucket, full(key), key, uploadId, partSize, partsInFlight);
    },

    async put(key, body, putOptions) {
      assertValidKey(key);
      const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
      try {
        await s3.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: full(key),
            Body: bytes,
            ContentLength: bytes.byteLength,
            ContentType: putOptions?.contentType,
            ...encryption,
          }),
        );
      } catch (error) {
        throw mapS3Error(error, 'PutObject', key);
      }
    },

    async get(key) {
      assertValidKey(key);
      try {
        const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: full(key) }));
        return got.Body === undefined ? new Uint8Array() : await got.Body.transformToByteArray();
      } catch (error) {
        if (isS3NotFound(error)) return undefined;
        throw mapS3Error(error, 'GetObject', key);
      }
    },

    async getStream(key, range) {
      assertValidKey(key);
      if (range !== undefined) assertValidRange(key, range);
      const header = range === undefined ? undefined : `bytes=${range.start}-${range.end ?? ''}`;
      let got: GetObjectCommandOutput;
      try {
        got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: full(key), Range: header }));
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
        throw new TransientError(
          'store-unavailable',
          `S3 GetObject of ${JSON.stringify(key)} returned no body`,
        );
      }
      const stream: StoredStream = {
        body: isAsyncIterable(body) ? body : emptyBody(),
        size,
        totalSize: parseTotalSize(got.ContentRange) ?? size,
        lastModified: got.LastModified ?? new Date(0),
      };
      if (got.ETag !== undefined) stream.etag = got.ETag;
      return stream;
    },

    head,

    async list(listPrefix) {
      assertValidPrefix(listPrefix);
      const keys: string[] = [];
      let token: string | undefined;
      do {
        try {
          const page = await s3.send(
            new ListObjectsV2Command({ Bucket: bucket, Prefix: full(listPrefix), ContinuationToken: token }),
          );
          for (const object of page.Contents ?? []) {
            if (object.Key !== undefined) keys.push(object.Key.slice(prefix.length));
          }
          token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
        } catch (error) {
          throw mapS3Error(error, 'ListObjectsV2', listPrefix);
        }
      } while (token !== undefined);
      return keys;
    },

    async delete(key) {
      assertValidKey(key);
      try {
        await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: full(key) }));
      } catch (error) {
        if (isS3NotFound(error)) return;
        throw mapS3Error(error, 'DeleteObject', key);
      }
    },
  };
}

type UploadState = 'open' | 'committed' | 'aborted';

class MultipartUpload implements StagedUpload {
  #bytesWritten = 0;
  #buffer: Buffer;
  #filled = 0;
  #nextPart = 1;
  readonly #parts: CompletedPart[] = [];
  readonly #inFlight = new Set<Promise<void>>();
  /** Buffers of finished parts, reused so memory stays at partsInFlight + 1 buffers, not GC-paced. */
  readonly #spare: Buffer[] = [];
  #failure: Error | undefined;
  #state: UploadState = 'open';
  #writeQueue: Promise<void> = Promise.resolve();

  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly fullKey: string,
    private readonly key: string,
    private readonly uploadId: string,
    private readonly partSize: number,
    private readonly partsInFlight: number,
  ) {
    this.#buffer = Buffer.allocUnsafe(partSize);
  }

  get bytesWritten(): number {
    return this.#bytesWritten;
  }

  write(chunk: Uint8Array): Promise<void> {
    const run = this.#writeQueue.then(() => this.#writeNow(chunk));
    this.#writeQueue = run.catch(() => undefined);
    return run;
  }

  readonly #commitOnce = singleFlight(() => this.#commitNow());
  readonly #abortOnce = singleFlight(() => this.#abortNow());

  commit(): Promise<void> {
    return this.#commitOnce();
  }

  async #commitNow(): Promise<void> {
    await this.#writeQueue;
    if (this.#state === 'committed') return;
    this.#assertOpen('commit');
    if (this.#filled > 0 || this.#nextPart === 1) await this.#sendPart();
    await Promise.all(this.#inFlight);
    this.#throwIfFailed();
    const parts = [...this.#parts].sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
    try {
      await this.s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: this.fullKey,
          UploadId: this.uploadId,
          MultipartUpload: { Parts: parts },
        }),
      );
    } catch (error) {
      throw mapS3Error(error, 'CompleteMultipartUpload', this.key);
    }
    this.#state = 'committed';
    this.#releaseBuffers();
  }

  abort(): Promise<void> {
    if (this.#state === 'committed') return Promise.resolve();
    this.#state = 'aborted';
    return this.#abortOnce();
  }

  async #abortNow(): Promise<void> {
    await this.#writeQueue;
    await Promise.all(this.#inFlight);
    this.#releaseBuffers();
    try {
      await this.s3.send(
        new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.fullKey, UploadId: this.uploadId }),
      );
    } catch (error) {
      if (errorName(error) === 'NoSuchUpload') return;
      throw mapS3Error(error, 'AbortMultipartUpload', this.key);
    }
  }

  async #writeNow(chunk: Uint8Array): Promise<void> {
    this.#assertOpen('write');
    this.#throwIfFailed();
    let offset = 0;
    while (offset < chunk.byteLength) {
      const take = Math.min(this.partSize - this.#filled, chunk.byteLength - offset);
      this.#buffer.set(chunk.subarray(offset, offset + take), this.#filled);
      this.#filled += take;
      offset += take;
      this.#bytesWritten += take;
      if (this.#filled === this.partSize) {
        await this.#sendPart();
        this.#throwIfFailed();
      }
    }
  }

  async #sendPart(): Promise<void> {
    while (this.#inFlight.size >= this.partsInFlight) await Promise.race(this.#inFlight);
    if (this.#state === 'aborted') this.#assertOpen('write');
    this.#throwIfFailed();
    if (this.#nextPart > maxParts) {
      throw new PermanentError(
        'too-large',
        `${JSON.stringify(this.key)} needs more than ${maxParts} parts of ${this.partSize} bytes`,
      );
    }
    const partNumber = this.#nextPart++;
    const full = this.#buffer;
    const body = full.subarray(0, this.#filled);
    this.#buffer = this.#spare.pop() ?? Buffer.allocUnsafe(this.partSize);
    this.#filled = 0;
    const sending: Promise<void> = this.s3
      .send(
        new UploadPartCommand({
          Bucket: this.bucket,
          Key: this.fullKey,
          UploadId: this.uploadId,
          PartNumber: partNumber,
          Body: body,
          ContentLength: body.byteLength,
        }),
      )
      .then(
        (sent) => {
          this.#parts.push({ PartNumber: partNumber, ETag: sent.ETag });
          this.#spare.push(full);
        },
        (error: unknown) => {
          this.#failure ??= mapS3Error(error, `UploadPart ${partNumber}`, this.key);
        },
      )
      .finally(() => {
        this.#inFlight.delete(sending);
      });
    this.#inFlight.add(sending);
  }

  #releaseBuffers(): void {
    this.#spare.length = 0;
    this.#buffer = Buffer.alloc(0);
    this.#filled = 0;
  }

  #throwIfFailed(): void {
    if (this.#failure === undefined) return;
    throw this.#failure;
  }

  #assertOpen(action: string): void {
    if (this.#state !== 'open') {
      throw new PermanentError(
        'upload-closed',
        `cannot ${action} ${JSON.stringify(this.key)}: the upload was already ${this.#state}`,
      );
    }
  }
}
