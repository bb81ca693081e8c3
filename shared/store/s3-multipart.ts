import {
  AbortMultipartUploadCommand,
  type CompletedPart,
  CompleteMultipartUploadCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { PermanentError } from '../errors.ts';
import { errorName, mapS3Error } from './s3-errors.ts';
import { singleFlight } from './single-flight.ts';
import type { StagedUpload } from './types.ts';

/** S3 refuses more than 10 000 parts. */
const maxParts = 10_000;

type UploadState = 'open' | 'committed' | 'aborted';

/**
 * One staged write as a multipart upload: parts of `partSize` bytes, at most `partsInFlight` of them
 * sent at once; the object appears only when CompleteMultipartUpload succeeds.
 */
export class MultipartUpload implements StagedUpload {
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
