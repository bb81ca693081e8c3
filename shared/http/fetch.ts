import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import { PermanentError, TransientError } from '../errors.ts';
import { NotFoundError, ObjectChangedError } from './errors.ts';

export { NotFoundError, ObjectChangedError } from './errors.ts';

/**
 * The mirror's HTTP client for upstream release servers, on `node:http`/`node:https` with keep-alive agents.
 *
 * Why not undici's interceptors (`interceptors.retry`, `interceptors.redirect`, from the `undici` package;
 * Node 20's built-in fetch does not export them):
 * - A resume must never splice two versions of an object. undici's retry handler sends `If-Match` only
 *   when the first response had a strong ETag, and resumes with no validator at all otherwise, so an
 *   object replaced by one of the same size behind a Last-Modified-only server is spliced silently. Here a
 *   resume sends `If-Range` with the strong ETag or, failing that, `Last-Modified` (RFC 9110 section
 *   13.1.5), refuses to resume with neither, and a changed object becomes `ObjectChangedError`.
 * - A redirect is checked hop by hop: https anywhere, plain http only within the requested origin or an
 *   allowed one. undici's redirect interceptor follows any `Location` and offers no per-hop check.
 * - Outcomes map onto this product's error classes (`PermanentError` for 4xx, a bad URL or an oversize
 *   body; `TransientError` for 5xx, network and timeouts; `NotFoundError` for 404), on which the worker's
 *   ack-or-retry decision rests, each naming the URL; undici reports `RequestRetryError` and its own codes.
 * - The body is regrouped into large chunks before it reaches the signature verifier, whose cost is per
 *   chunk (`node --import tsx bench/http-download.ts` compares 1 MiB chunks with the socket's own).
 */

const maxRedirects = 5;
const redirectStatuses = new Set([301, 302, 303, 307, 308]);
const userAgent = 'cldist-release-mirror';
const agents = {
  'http:': new http.Agent({ keepAlive: true }),
  'https:': new https.Agent({ keepAlive: true }),
};

export interface RequestOptions {
  /** Inactivity limit: no headers or no body bytes for this long is a TransientError. */
  timeoutMs: number;
  /**
   * Origins (`https://stable.release.flatcar-linux.net`) a redirect may lead to over plain http. Redirects to
   * https are always followed, and so are redirects within the origin of the requested URL.
   */
  allowedOrigins?: readonly string[];
}

export interface ConditionalGetOptions extends RequestOptions {
  etag?: string;
  lastModified?: string;
  maxBytes: number;
}

export type ConditionalGetResult =
  | { status: 'unchanged' }
  | { status: 'ok'; body: Uint8Array; etag?: string; lastModified?: string };

export interface FetchSmallOptions extends RequestOptions {
  maxBytes: number;
}

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

function parseHttpUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (cause) {
    throw new PermanentError('bad-url', `${JSON.stringify(url)} is not a URL`, { cause });
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new PermanentError('bad-url', `${url} is not an http(s) URL`);
  }
  return parsed;
}

function originOf(url: string): string {
  return parseHttpUrl(url).origin;
}

function networkError(url: string, error: unknown): Error {
  if (error instanceof PermanentError || error instanceof TransientError) {
    return error;
  }
  const message = error instanceof Error ? error.message : String(error);
  return new TransientError('network', `GET ${url} failed: ${message}`, { cause: error });
}

function timeoutError(url: string, timeoutMs: number): TransientError {
  return new TransientError('timeout', `GET ${url} timed out: nothing received for ${timeoutMs} ms`);
}

interface Opened {
  response: IncomingMessage;
  url: string;
}

function requestOnce(
  url: URL,
  headers: OutgoingHttpHeaders,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const lib = url.protocol === 'https:' ? https : http;
    const request = lib.request(url, {
      method: 'GET',
      headers: { 'user-agent': userAgent, 'accept-encoding': 'identity', ...headers },
      agent: url.protocol === 'https:' ? agents['https:'] : agents['http:'],
      signal,
    });
    request.setTimeout(timeoutMs, () => request.destroy(timeoutError(url.href, timeoutMs)));
    request.on('error', (error) => reject(networkError(url.href, signal?.aborted ? signal.reason : error)));
    request.on('response', (response) => {
      request.setTimeout(0);
      response.on('error', () => {});
      resolve(response);
    });
    request.end();
  });
}

async function open(
  url: string,
  headers: OutgoingHttpHeaders,
  options: RequestOptions,
  signal?: AbortSignal,
): Promise<Opened> {
  let current = parseHttpUrl(url);
  const allowed = new Set([current.origin, ...(options.allowedOrigins ?? []).map(originOf)]);
  for (let hop = 0; ; hop++) {
    const response = await requestOnce(current, headers, options.timeoutMs, signal);
    const status = response.statusCode ?? 0;
    if (!redirectStatuses.has(status)) {
      return { response, url: current.href };
    }
    response.resume();
    const location = response.headers.location;
    if (location === undefined) {
      throw new PermanentError('bad-redirect', `GET ${current.href} answered ${status} without a Location`);
    }
    if (hop >= maxRedirects) {
      throw new PermanentError('bad-redirect', `GET ${url} redirected more than ${maxRedirects} times`);
    }
    let next: URL;
    try {
      next = new URL(location, current);
    } catch (cause) {
      throw new PermanentError(
        'bad-redirect',
        `GET ${current.href} redirects to ${JSON.stringify(location)}, not a URL`,
        { cause },
      );
    }
    if (next.protocol !== 'https:' && !allowed.has(next.origin)) {
      throw new PermanentError(
        'bad-redirect',
        `GET ${current.href} redirects to ${next.href}, which is neither https nor a configured channel origin`,
      );
    }
    current = next;
  }
}

function statusError(url: string, status: number): Error {
  if (status === 404 || status === 410) {
    return new NotFoundError(url, status);
  }
  if (status === 429 || status >= 500) {
    return new TransientError(`http-${status}`, `GET ${url} answered ${status}`);
  }
  return new PermanentError(`http-${status}`, `GET ${url} answered ${status}`);
}

function tooLarge(url: string, bytes: number, maxBytes: number, announced: boolean): PermanentError {
  return new PermanentError(
    'too-large',
    `GET ${url} ${announced ? 'announces' : 'sent more than'} ${bytes} bytes, over the limit of ${maxBytes} bytes`,
  );
}

/** Bytes are signed as published: a body a CDN compressed on the way would fail verification for good. */
function checkEncoding(response: IncomingMessage, url: string): void {
  const encoding = header(response, 'content-encoding');
  if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
    response.destroy();
    throw new PermanentError(
      'content-encoding',
      `GET ${url} answered with Content-Encoding ${encoding} although only identity was accepted`,
    );
  }
}

function header(response: IncomingMessage, name: string): string | undefined {
  const value = response.headers[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function contentLengthOf(response: IncomingMessage): number | undefined {
  const value = header(response, 'content-length');
  if (value === undefined || !/^[0-9]{1,16}$/.test(value)) {
    return undefined;
  }
  return Number(value);
}

async function readCapped(response: IncomingMessage, url: string, maxBytes: number): Promise<Uint8Array> {
  checkEncoding(response, url);
  const announced = contentLengthOf(response);
  if (announced !== undefined && announced > maxBytes) {
    response.destroy();
    throw tooLarge(url, announced, maxBytes, true);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of response as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > maxBytes) {
        response.destroy();
        throw tooLarge(url, maxBytes, maxBytes, false);
      }
      chunks.push(chunk);
    }
  } catch (error) {
    throw networkError(url, error);
  }
  const body = Buffer.concat(chunks, total);
  return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
}

async function withDeadline<T>(
  url: string,
  timeoutMs: number,
  run: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(timeoutError(url, timeoutMs)), timeoutMs);
  try {
    return await run(controller.signal);
  } catch (error) {
    throw controller.signal.aborted ? timeoutError(url, timeoutMs) : error;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Read a small file (`current/version.txt`) only if it changed, so an unchanged upstream costs one request
 * with an empty answer. The whole exchange, redirects included, must finish within `timeoutMs`.
 */
export function conditionalGet(url: string, options: ConditionalGetOptions): Promise<ConditionalGetResult> {
  const headers: OutgoingHttpHeaders = {};
  if (options.etag !== undefined) {
    headers['if-none-match'] = options.etag;
  }
  if (options.lastModified !== undefined) {
    headers['if-modified-since'] = options.lastModified;
  }
  return withDeadline(url, options.timeoutMs, async (signal) => {
    const { response, url: finalUrl } = await open(url, headers, options, signal);
    const status = response.statusCode ?? 0;
    if (status === 304) {
      response.resume();
      return { status: 'unchanged' };
    }
    if (status !== 200) {
      response.resume();
      throw statusError(finalUrl, status);
    }
    const body = await readCapped(response, finalUrl, options.maxBytes);
    const result: ConditionalGetResult = { status: 'ok', body };
    const etag = header(response, 'etag');
    const lastModified = header(response, 'last-modified');
    if (etag !== undefined) {
      result.etag = etag;
    }
    if (lastModified !== undefined) {
      result.lastModified = lastModified;
    }
    return result;
  });
}

/** A size-capped GET for `.sig` files: a hostile server cannot make the worker buffer more than `maxBytes`. */
export function fetchSmall(url: string, options: FetchSmallOptions): Promise<Uint8Array> {
  return withDeadline(url, options.timeoutMs, async (signal) => {
    const { response, url: finalUrl } = await open(url, {}, options, signal);
    const status = response.statusCode ?? 0;
    if (status !== 200) {
      response.resume();
      throw statusError(finalUrl, status);
    }
    return readCapped(response, finalUrl, options.maxBytes);
  });
}

const contentRangePattern = /^bytes ([0-9]+)-([0-9]+)\/([0-9]+|\*)$/;

/**
 * Stream one artifact with bounded memory. A dropped connection is resumed with `Range` + `If-Range`
 * against the same object, invisibly to the reader; if the object changed meanwhile the body throws
 * ObjectChangedError instead of splicing two objects together. Chunks are gathered into `chunkSize` pieces
 * because the signature verifier's cost is per chunk (`bench/http-download.ts` compares chunk sizes).
 */
export async function streamDownload(url: string, options: StreamDownloadOptions): Promise<Download> {
  const { maxBytes, maxResumes, timeoutMs, onProgress } = options;
  const chunkSize = options.chunkSize ?? 1 << 20;
  const first = await open(url, {}, options);
  const firstStatus = first.response.statusCode ?? 0;
  if (firstStatus !== 200) {
    first.response.resume();
    throw statusError(first.url, firstStatus);
  }
  checkEncoding(first.response, first.url);
  const contentLength = contentLengthOf(first.response);
  if (contentLength !== undefined && contentLength > maxBytes) {
    first.response.destroy();
    throw tooLarge(first.url, contentLength, maxBytes, true);
  }
  const etag = header(first.response, 'etag');
  const lastModified = header(first.response, 'last-modified');
  const validator = etag !== undefined && !etag.startsWith('W/') ? etag : lastModified;

  let current: IncomingMessage = first.response;
  let resumes = 0;
  let received = 0;
  let started = false;
  let cancelled = false;
  const cancelledError = (): TransientError =>
    new TransientError('cancelled', `GET ${url} was cancelled after ${received} bytes`);

  const resume = async (cause: unknown): Promise<IncomingMessage> => {
    const progress = `${received}${contentLength === undefined ? '' : ` of ${contentLength}`} bytes`;
    if (validator === undefined) {
      throw new TransientError(
        'truncated',
        `GET ${url} broke off after ${progress}; no ETag to resume with`,
        {
          cause,
        },
      );
    }
    let lastError = cause;
    while (resumes < maxResumes) {
      resumes++;
      if (resumes > 1) {
        await new Promise((resolve) => setTimeout(resolve, Math.min(2000, 100 * 2 ** (resumes - 2))));
      }
      let opened: Opened;
      try {
        opened = await open(url, { range: `bytes=${received}-`, 'if-range': validator }, options);
      } catch (error) {
        if (error instanceof PermanentError) {
          throw error;
        }
        lastError = error;
        continue;
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
        if (error instanceof PermanentError) {
          throw error;
        }
        lastError = error;
        continue;
      }
      checkEncoding(response, finalUrl);
      const range = contentRangePattern.exec(header(response, 'content-range') ?? '');
      const total = range?.[3] === '*' ? undefined : Number(range?.[3]);
      if (
        !range ||
        Number(range[1]) !== received ||
        (contentLength !== undefined && total !== contentLength)
      ) {
        response.destroy();
        throw new ObjectChangedError(
          finalUrl,
          `a resume at byte ${received} got Content-Range ${JSON.stringify(header(response, 'content-range') ?? '')}`,
        );
      }
      const resumedEtag = header(response, 'etag');
      if (etag !== undefined && resumedEtag !== undefined && resumedEtag !== etag) {
        response.destroy();
        throw new ObjectChangedError(finalUrl, `ETag ${etag} became ${resumedEtag}`);
      }
      return response;
    }
    throw new TransientError(
      'truncated',
      `GET ${url} broke off after ${progress} and ${resumes} resume(s); giving up`,
      { cause: lastError },
    );
  };

  async function* body(): AsyncGenerator<Uint8Array> {
    if (started) {
      throw new Error('a download body can be read only once');
    }
    started = true;
    let buffer = chunkSize > 0 ? Buffer.allocUnsafeSlow(chunkSize) : undefined;
    let filled = 0;
    let yielded = 0;
    let waiting = false;
    const watchdog = setTimeout(function check() {
      if (waiting) {
        current.destroy(timeoutError(url, timeoutMs));
      } else {
        watchdog.refresh();
      }
    }, timeoutMs).unref();
    try {
      for (;;) {
        const iterator = (current as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
        let failure: unknown;
        for (;;) {
          let step: IteratorResult<Buffer>;
          waiting = true;
          watchdog.refresh();
          try {
            step = await iterator.next();
          } catch (error) {
            failure = error;
            break;
          } finally {
            waiting = false;
          }
          if (cancelled) {
            throw cancelledError();
          }
          if (step.done) {
            break;
          }
          const chunk = step.value;
          received += chunk.length;
          if (received > maxBytes) {
            current.destroy();
            throw tooLarge(url, maxBytes, maxBytes, false);
          }
          if (buffer === undefined) {
            yielded += chunk.length;
            onProgress?.(yielded, contentLength);
            yield new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
            continue;
          }
          let offset = 0;
          while (offset < chunk.length) {
            const take = Math.min(chunk.length - offset, chunkSize - filled);
            chunk.copy(buffer, filled, offset, offset + take);
            filled += take;
            offset += take;
            if (filled === chunkSize) {
              const full: Uint8Array = new Uint8Array(buffer.buffer, 0, chunkSize);
              buffer = Buffer.allocUnsafeSlow(chunkSize);
              filled = 0;
              yielded += chunkSize;
              onProgress?.(yielded, contentLength);
              yield full;
            }
          }
        }
        if (failure === undefined && (contentLength === undefined || received === contentLength)) {
          break;
        }
        current.destroy();
        if (cancelled) {
          throw cancelledError();
        }
        current = await resume(failure ?? new Error(`connection closed after ${received} bytes`));
      }
      if (buffer !== undefined && filled > 0) {
        yielded += filled;
        onProgress?.(yielded, contentLength);
        yield new Uint8Array(buffer.buffer, 0, filled);
      }
    } finally {
      clearTimeout(watchdog);
      current.destroy();
    }
  }

  const download: Download = {
    url: first.url,
    body: { [Symbol.asyncIterator]: body },
    get resumes() {
      return resumes;
    },
    cancel() {
      cancelled = true;
      current.destroy();
    },
  };
  if (contentLength !== undefined) {
    download.contentLength = contentLength;
  }
  if (etag !== undefined) {
    download.etag = etag;
  }
  if (lastModified !== undefined) {
    download.lastModified = lastModified;
  }
  return download;
}
