import type { OutgoingHttpHeaders } from 'node:http';
import { header, open, type RequestOptions, readCapped, statusError, withDeadline } from './request.ts';

export { NotFoundError, ObjectChangedError } from './errors.ts';
export type { RequestOptions } from './request.ts';
export { type Download, type StreamDownloadOptions, streamDownload } from './stream-download.ts';

/**
 * The mirror's HTTP client for upstream release servers, on `node:http`/`node:https` with keep-alive agents:
 * one GET with its redirects in `request.ts`, the resumable artifact download in `stream-download.ts`,
 * and the two small reads here.
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
