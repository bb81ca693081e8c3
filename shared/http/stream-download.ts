import type { IncomingMessage } from 'node:http';
import { PermanentError, TransientError } from '../errors.ts';
import { ObjectChangedError } from './errors.ts';
import {
  checkEncoding,
  contentLengthOf,
  header,
  type Opened,
  open,
  type RequestOptions,
  statusError,
  timeoutError,
  tooLarge,
} from './request.ts';

export interface StreamDownloadOptions extends RequestOptions {
  maxBytes: number;
  /** How many `Range` requests may continue one download after dropped connections. */
  maxResumes: number;
  /** Bytes per yielded chunk (the last one may be shorter); 0 yields the socket's own chunks unchanged. */
  chunkSize?: number;
  onProgress?: (bytes: number, total?: number) => void;
}

export interface Download {
  /** The final URL after redirects. */
  url: string;
  contentLength?: number;
  etag?: string;
  lastModified?: string;
  /**
   * The whole object, resumed transparently after dropped connections. Throws ObjectChangedError when the
   * object changed under a resume, TransientError `truncated` when it cannot be completed, PermanentError
   * `too-large` past `maxBytes`. Iterate it once.
   */
  body: AsyncIterable<Uint8Array>;
  /** Range requests made so far. */
  readonly resumes: number;
  /** Release the connection when the body will not be read to the end. */
  cancel(): void;
}

const contentRangePattern = /^bytes ([0-9]+)-([0-9]+)\/([0-9]+|\*)$/;

/** What the first response said about the object, which every resume must agree with. */
interface FirstResponse {
  opened: Opened;
  contentLength: number | undefined;
  etag: string | undefined;
  lastModified: string | undefined;
  /** A strong ETag, else Last-Modified: what `If-Range` sends (RFC 9110 section 13.1.5). */
  validator: string | undefined;
}

async function openFirst(url: string, options: StreamDownloadOptions): Promise<FirstResponse> {
  const opened = await open(url, {}, options);
  const { response } = opened;
  const status = response.statusCode ?? 0;
  if (status !== 200) {
    response.resume();
    throw statusError(opened.url, status);
  }
  checkEncoding(response, opened.url);
  const contentLength = contentLengthOf(response);
  if (contentLength !== undefined && contentLength > options.maxBytes) {
    response.destroy();
    throw tooLarge(opened.url, contentLength, options.maxBytes, true);
  }
  const etag = header(response, 'etag');
  const lastModified = header(response, 'last-modified');
  const validator = etag !== undefined && !etag.startsWith('W/') ? etag : lastModified;
  return { opened, contentLength, etag, lastModified, validator };
}

/**
 * Gathers socket chunks into `chunkSize` pieces, each in a buffer of its own (a yielded piece is never
 * written again); with `chunkSize` 0 the chunks pass through unchanged.
 */
class Regrouper {
  private buffer: Buffer | undefined;
  private filled = 0;

  constructor(private readonly chunkSize: number) {
    this.buffer = chunkSize > 0 ? Buffer.allocUnsafeSlow(chunkSize) : undefined;
  }

  *push(chunk: Buffer): Generator<Uint8Array> {
    if (this.buffer === undefined) {
      yield new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      return;
    }
    let offset = 0;
    while (offset < chunk.length) {
      const take = Math.min(chunk.length - offset, this.chunkSize - this.filled);
      chunk.copy(this.buffer, this.filled, offset, offset + take);
      this.filled += take;
      offset += take;
      if (this.filled === this.chunkSize) {
        const full: Uint8Array = new Uint8Array(this.buffer.buffer, 0, this.chunkSize);
        this.buffer = Buffer.allocUnsafeSlow(this.chunkSize);
        this.filled = 0;
        yield full;
      }
    }
  }

  /** The last, shorter piece, if any. */
  rest(): Uint8Array | undefined {
    if (this.buffer === undefined || this.filled === 0) return undefined;
    return new Uint8Array(this.buffer.buffer, 0, this.filled);
  }
}

/** A failed resume request that another attempt may cure. */
interface RetryableFailure {
  retry: unknown;
}

/** One download's state: the response being read, the bytes received, the resumes made. */
class ResumableDownload {
  current: IncomingMessage;
  resumes = 0;
  private received = 0;
  private yielded = 0;
  private started = false;
  private cancelled = false;
  /** Set while waiting for the socket; the inactivity watchdog only fires then. */
  private waiting = false;

  constructor(
    private readonly url: string,
    private readonly options: StreamDownloadOptions,
    private readonly first: FirstResponse,
  ) {
    this.current = first.opened.response;
  }

  cancel(): void {
    this.cancelled = true;
    this.current.destroy();
  }

  private cancelledError(): TransientError {
    return new TransientError('cancelled', `GET ${this.url} was cancelled after ${this.received} bytes`);
  }

  /** Continue after `cause` broke the connection, with `Range` + `If-Range` against the same object. */
  private async resume(cause: unknown): Promise<IncomingMessage> {
    const { contentLength, validator } = this.first;
    const progress = `${this.received}${contentLength === undefined ? '' : ` of ${contentLength}`} bytes`;
    if (validator === undefined) {
      throw new TransientError(
        'truncated',
        `GET ${this.url} broke off after ${progress}; no ETag to resume with`,
        {
          cause,
        },
      );
    }
    let lastError = cause;
    while (this.resumes < this.options.maxResumes) {
      this.resumes++;
      if (this.resumes > 1) {
        await new Promise((resolve) => setTimeout(resolve, Math.min(2000, 100 * 2 ** (this.resumes - 2))));
      }
      const attempt = await this.resumeOnce(validator);
      if (!('retry' in attempt)) return attempt;
      lastError = attempt.retry;
    }
    throw new TransientError(
      'truncated',
      `GET ${this.url} broke off after ${progress} and ${this.resumes} resume(s); giving up`,
      { cause: lastError },
    );
  }

  private async resumeOnce(validator: string): Promise<IncomingMessage | RetryableFailure> {
    const received = this.received;
    let opened: Opened;
    try {
      opened = await open(this.url, { range: `bytes=${received}-`, 'if-range': validator }, this.options);
    } catch (error) {
      if (error instanceof PermanentError) throw error;
      return { retry: error };
    }
    const { response, url: finalUrl } = opened;
    const status = response.statusCode ?? 0;
    if (status === 200 || status === 416) {
      response.destroy();
      throw new ObjectChangedError(finalUrl, `a resume at byte ${received} was answered ${status}`);
    }
    if (status !== 206) {
      response.resume();
      const error = statusError(finalUrl, status);
      if (error instanceof PermanentError) throw error;
      return { retry: error };
    }
    checkEncoding(response, finalUrl);
    this.checkSameObject(response, finalUrl);
    return response;
  }

  /** A 206 must continue at the byte asked for, of an object of the same length and ETag. */
  private checkSameObject(response: IncomingMessage, finalUrl: string): void {
    const { contentLength, etag } = this.first;
    const range = contentRangePattern.exec(header(response, 'content-range') ?? '');
    const total = range?.[3] === '*' ? undefined : Number(range?.[3]);
    if (
      !range ||
      Number(range[1]) !== this.received ||
      (contentLength !== undefined && total !== contentLength)
    ) {
      response.destroy();
      throw new ObjectChangedError(
        finalUrl,
        `a resume at byte ${this.received} got Content-Range ${JSON.stringify(header(response, 'content-range') ?? '')}`,
      );
    }
    const resumedEtag = header(response, 'etag');
    if (etag !== undefined && resumedEtag !== undefined && resumedEtag !== etag) {
      response.destroy();
      throw new ObjectChangedError(finalUrl, `ETag ${etag} became ${resumedEtag}`);
    }
  }

  private progressed(piece: Uint8Array): Uint8Array {
    this.yielded += piece.byteLength;
    this.options.onProgress?.(this.yielded, this.first.contentLength);
    return piece;
  }

  async *body(): AsyncGenerator<Uint8Array> {
    if (this.started) {
      throw new Error('a download body can be read only once');
    }
    this.started = true;
    const { timeoutMs } = this.options;
    const regroup = new Regrouper(this.options.chunkSize ?? 1 << 20);
    const watchdog = setTimeout(() => {
      if (this.waiting) {
        this.current.destroy(timeoutError(this.url, timeoutMs));
      } else {
        watchdog.refresh();
      }
    }, timeoutMs).unref();
    try {
      for (;;) {
        const failure = yield* this.readCurrent(regroup, watchdog);
        const { contentLength } = this.first;
        if (failure === undefined && (contentLength === undefined || this.received === contentLength)) {
          break;
        }
        this.current.destroy();
        if (this.cancelled) {
          throw this.cancelledError();
        }
        this.current = await this.resume(
          failure ?? new Error(`connection closed after ${this.received} bytes`),
        );
      }
      const rest = regroup.rest();
      if (rest !== undefined) yield this.progressed(rest);
    } finally {
      clearTimeout(watchdog);
      this.current.destroy();
    }
  }

  /** Reads the current response to its end; returns what broke it off, if anything. */
  private async *readCurrent(
    regroup: Regrouper,
    watchdog: NodeJS.Timeout,
  ): AsyncGenerator<Uint8Array, unknown> {
    const iterator = (this.current as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    for (;;) {
      let step: IteratorResult<Buffer>;
      this.waiting = true;
      watchdog.refresh();
      try {
        step = await iterator.next();
      } catch (error) {
        return error;
      } finally {
        this.waiting = false;
      }
      if (this.cancelled) {
        throw this.cancelledError();
      }
      if (step.done) {
        return undefined;
      }
      const chunk = step.value;
      this.received += chunk.length;
      if (this.received > this.options.maxBytes) {
        this.current.destroy();
        throw tooLarge(this.url, this.options.maxBytes, this.options.maxBytes, false);
      }
      for (const piece of regroup.push(chunk)) yield this.progressed(piece);
    }
  }
}

/**
 * Stream one artifact with bounded memory. A dropped connection is resumed with `Range` + `If-Range`
 * against the same object, invisibly to the reader; if the object changed meanwhile the body throws
 * ObjectChangedError instead of splicing two objects together. Chunks are gathered into `chunkSize` pieces
 * because the signature verifier's cost is per chunk (`bench/http-download.ts` compares chunk sizes).
 */
export async function streamDownload(url: string, options: StreamDownloadOptions): Promise<Download> {
  const first = await openFirst(url, options);
  const state = new ResumableDownload(url, options, first);
  const download: Download = {
    url: first.opened.url,
    body: { [Symbol.asyncIterator]: () => state.body() },
    get resumes() {
      return state.resumes;
    },
    cancel() {
      state.cancel();
    },
  };
  if (first.contentLength !== undefined) {
    download.contentLength = first.contentLength;
  }
  if (first.etag !== undefined) {
    download.etag = first.etag;
  }
  if (first.lastModified !== undefined) {
    download.lastModified = first.lastModified;
  }
  return download;
}
