import { Readable } from 'node:stream';
import { Hono } from 'hono';
import rangeParser from 'range-parser';
import { describeError } from '../shared/errors.ts';
import { redactPaths } from '../shared/log-safety.ts';
import { maxKeyBytes, storeKeyProblem } from '../shared/store/keys.ts';
import type { ObjectStore } from '../shared/store/types.ts';

export type ByteRange = { start: number; end: number };

/**
 * One `bytes=` range against an object of `size` bytes, read by `range-parser`: `undefined` means "serve
 * it all" (no header, a malformed one, another unit, or several ranges, which resuming downloaders never
 * send), `'unsatisfiable'` means 416. RFC 9110 section 14.2 lets a server ignore or reject an invalid range
 * (`bytes=9-2`); range-parser rejects it, and so does a suffix longer than the object (`bytes=-200` of 100
 * bytes), which section 14.1.3 would serve whole. No resuming downloader sends either.
 */
export function parseRange(
  header: string | undefined,
  size: number,
): ByteRange | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  const ranges = rangeParser(size, header.trim());
  if (ranges === -1) return 'unsatisfiable';
  if (ranges === -2 || ranges.type !== 'bytes' || ranges.length !== 1) return undefined;
  const [range] = ranges;
  return range === undefined ? undefined : { start: range.start, end: range.end };
}

const segmentPattern = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;

/**
 * The store key for a request path, or undefined for anything that is not a plain upstream-style path,
 * including one the store could not hold (a segment or a key too long), so that is a 404 and never an
 * error from the store.
 */
export function mirrorKey(path: string): string | undefined {
  if (path.length > maxKeyBytes) return undefined;
  const segments = path.split('/');
  if (segments.length < 3) return undefined;
  for (const segment of segments) {
    if (!segmentPattern.test(segment) || segment.includes('..')) return undefined;
  }
  const key = segments.join('/');
  return storeKeyProblem(key) === undefined ? key : undefined;
}

/** Longer request paths than any key could need are refused before they are decoded or looked at. */
export const maxMirrorPathLength = 4 * maxKeyBytes;

export interface MirrorAppOptions {
  /**
   * Told about unexpected errors (answered 500 with no detail). The default writes one JSON line to
   * stderr, with absolute paths redacted: a file system error names the data dir, which a log reader
   * need not learn.
   */
  onError?: (error: unknown) => void;
}

function defaultOnError(error: unknown): void {
  const line = {
    level: 'error',
    time: new Date().toISOString(),
    event: 'mirror.internal_error',
    cause: redactPaths(describeError(error)),
  };
  process.stderr.write(`${JSON.stringify(line)}\n`);
}

function contentType(key: string): string {
  if (key.endsWith('.txt') || key.endsWith('.DIGESTS') || key.endsWith('.asc'))
    return 'text/plain; charset=utf-8';
  if (key.endsWith('.json')) return 'application/json';
  return 'application/octet-stream';
}

/**
 * The read-only mirror in the upstream layout, so `flatcar-install -b http://host:8080/mirror/stable/amd64-usr`
 * works against it. Only committed objects are in the store, so whatever this serves has been verified.
 */
export function createMirrorApp(store: ObjectStore, options: MirrorAppOptions = {}): Hono {
  const onError = options.onError ?? defaultOnError;
  const app = new Hono();
  app.onError((error, c) => {
    onError(error);
    return c.text('internal error\n', 500);
  });
  app.on(['GET', 'HEAD'], '/mirror/*', async (c) => {
    const rawPath = new URL(c.req.url).pathname;
    if (rawPath.length > maxMirrorPathLength) return c.text('request path too long\n', 414);
    let path: string;
    try {
      path = decodeURIComponent(rawPath.slice('/mirror/'.length));
    } catch {
      return c.text('not found\n', 404);
    }
    const key = mirrorKey(path);
    if (key === undefined) return c.text('not found\n', 404);
    const head = await store.head(key);
    if (head === undefined) return c.text('not found\n', 404);
    const headers: Record<string, string> = {
      'Accept-Ranges': 'bytes',
      'Content-Type': contentType(key),
      'Last-Modified': head.lastModified.toUTCString(),
      'Cache-Control': key.includes('/current/') ? 'no-cache' : 'public, max-age=3600',
    };
    if (head.etag !== undefined) headers.ETag = head.etag;
    if (head.etag !== undefined && c.req.header('If-None-Match') === head.etag) {
      return c.body(null, 304, headers);
    }
    const ifRange = c.req.header('If-Range');
    const rangeAllowed = ifRange === undefined || ifRange === head.etag;
    const range = rangeAllowed ? parseRange(c.req.header('Range'), head.size) : undefined;
    if (range === 'unsatisfiable') {
      return c.body(null, 416, { ...headers, 'Content-Range': `bytes */${head.size}` });
    }
    const status = range === undefined ? 200 : 206;
    if (range !== undefined) headers['Content-Range'] = `bytes ${range.start}-${range.end}/${head.size}`;
    headers['Content-Length'] = String(range === undefined ? head.size : range.end - range.start + 1);
    if (c.req.method === 'HEAD') return c.body(null, status, headers);
    const stream = await store.getStream(key, range);
    if (stream === undefined) return c.text('not found\n', 404);
    const body = Readable.toWeb(Readable.from(stream.body)) as ReadableStream<Uint8Array>;
    return c.body(body, status, headers);
  });
  return app;
}
