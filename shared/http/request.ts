import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { PermanentError, TransientError } from '../errors.ts';
import { NotFoundError } from './errors.ts';

/**
 * One upstream GET on `node:http`/`node:https`: redirects checked hop by hop, statuses, encodings and
 * sizes mapped onto the product's error classes. `fetch.ts` says why this is not undici's interceptors.
 */

const maxRedirects = 5;
const redirectStatuses = new Set([301, 302, 303, 307, 308]);
const userAgent = 'cldist-release-mirror';

/**
 * Plain-http sockets read up to 1 MiB at a time instead of libuv's 64 KiB, so an artifact reaches the HTTP
 * parser, the response stream and the download's bookkeeping in a fourteenth as many chunks; on two cores
 * that per-chunk work on the main thread is what bounds a loopback or LAN mirror (`npm run
 * bench:mirror-once`). Node's documented `onread` socket option reads into one buffer lent to every socket;
 * each read is copied out into a buffer of its own before the next read can land (reads and this callback
 * run one at a time on the event loop) and pushed into the socket's readable side, where `node:http` takes
 * it as from any socket. A full reader (`push` answers false) stops the socket until the reader asks again.
 * TLS sockets get their bytes in records of at most 16 KiB whatever they are lent, so https keeps Node's
 * reads.
 */
const socketReadBytes = 1 << 20;
const lentReadBuffer = Buffer.allocUnsafeSlow(socketReadBytes);

function pushRead(this: Socket, bytes: number, buffer: Uint8Array): boolean {
  return this.push(Buffer.from(buffer.subarray(0, bytes)));
}

const agents = {
  'http:': new http.Agent({ keepAlive: true, onread: { buffer: lentReadBuffer, callback: pushRead } }),
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

export function networkError(url: string, error: unknown): Error {
  if (error instanceof PermanentError || error instanceof TransientError) {
    return error;
  }
  const message = error instanceof Error ? error.message : String(error);
  return new TransientError('network', `GET ${url} failed: ${message}`, { cause: error });
}

export function timeoutError(url: string, timeoutMs: number): TransientError {
  return new TransientError('timeout', `GET ${url} timed out: nothing received for ${timeoutMs} ms`);
}

export interface Opened {
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

export async function open(
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

export function statusError(url: string, status: number): Error {
  if (status === 404 || status === 410) {
    return new NotFoundError(url, status);
  }
  if (status === 429 || status >= 500) {
    return new TransientError(`http-${status}`, `GET ${url} answered ${status}`);
  }
  return new PermanentError(`http-${status}`, `GET ${url} answered ${status}`);
}

export function tooLarge(url: string, bytes: number, maxBytes: number, announced: boolean): PermanentError {
  return new PermanentError(
    'too-large',
    `GET ${url} ${announced ? 'announces' : 'sent more than'} ${bytes} bytes, over the limit of ${maxBytes} bytes`,
  );
}

/** Bytes are signed as published: a body a CDN compressed on the way would fail verification for good. */
export function checkEncoding(response: IncomingMessage, url: string): void {
  const encoding = header(response, 'content-encoding');
  if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
    response.destroy();
    throw new PermanentError(
      'content-encoding',
      `GET ${url} answered with Content-Encoding ${encoding} although only identity was accepted`,
    );
  }
}

export function header(response: IncomingMessage, name: string): string | undefined {
  const value = response.headers[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

export function contentLengthOf(response: IncomingMessage): number | undefined {
  const value = header(response, 'content-length');
  if (value === undefined || !/^[0-9]{1,16}$/.test(value)) {
    return undefined;
  }
  return Number(value);
}

export async function readCapped(
  response: IncomingMessage,
  url: string,
  maxBytes: number,
): Promise<Uint8Array> {
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

export async function withDeadline<T>(
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
