import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import rangeParser from 'range-parser';
import { generatedBytes } from './content.ts';
import type { Fault, FaultList } from './faults.ts';
import { etagOf, nextModified, type ObjectStore, type StoredObject } from './objects.ts';

export interface RequestLogEntry {
  method: string;
  path: string;
  /** 0 until the status is decided. */
  status: number;
  range?: string;
  ifRange?: string;
  ifNoneMatch?: string;
  ifModifiedSince?: string;
  bytesSent: number;
  /** The connection was cut by a fault or by the client. */
  aborted: boolean;
  faults: Fault['kind'][];
}

/** The log is for tests and the demo's status view; a long demo run must not grow it without bound. */
const maxLoggedRequests = 10_000;

export interface OriginState {
  store: ObjectStore;
  faults: FaultList;
  requests: RequestLogEntry[];
}

/** How the body is to be damaged, from the faults that do not answer on their own. */
interface BodyFaults {
  dropAt?: number;
  stallAt?: number;
  tamperAt: number[];
}

type Reply = (status: number, headers?: Record<string, string | number>, text?: string) => void;

function drainedOrClosed(response: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    function done(): void {
      response.off('drain', done);
      response.off('close', done);
      resolve();
    }
    response.on('drain', done);
    response.on('close', done);
  });
}

function sleepUnlessClosed(ms: number, response: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      response.off('close', done);
      resolve();
    }
    response.on('close', done);
  });
}

function logEntry(request: IncomingMessage, path: string, requests: RequestLogEntry[]): RequestLogEntry {
  const entry: RequestLogEntry = {
    method: request.method ?? 'GET',
    path,
    status: 0,
    bytesSent: 0,
    aborted: false,
    faults: [],
  };
  const header = (name: string): string | undefined => {
    const value = request.headers[name];
    return typeof value === 'string' ? value : undefined;
  };
  const fields = [
    ['range', 'range'],
    ['ifRange', 'if-range'],
    ['ifNoneMatch', 'if-none-match'],
    ['ifModifiedSince', 'if-modified-since'],
  ] as const;
  for (const [field, name] of fields) {
    const value = header(name);
    if (value !== undefined) entry[field] = value;
  }
  requests.push(entry);
  if (requests.length > maxLoggedRequests) requests.splice(0, requests.length - maxLoggedRequests);
  return entry;
}

/** Applies the faults that act before the body; true when one of them answered the request itself. */
async function applyFaults(
  taken: Fault[],
  path: string,
  state: OriginState,
  response: ServerResponse,
  reply: Reply,
  body: BodyFaults,
): Promise<boolean> {
  for (const fault of taken) {
    switch (fault.kind) {
      case 'delay':
        await sleepUnlessClosed(fault.ms, response);
        if (response.destroyed) return true;
        break;
      case 'changeEtag': {
        const object = state.store.raw(path);
        if (object) {
          object.generation++;
          object.modified = nextModified(object.modified);
        }
        break;
      }
      case 'status':
        reply(fault.code, { 'content-type': 'text/plain' }, `injected status ${fault.code}\n`);
        return true;
      case 'redirect':
        reply(302, { location: fault.to }, '');
        return true;
      case 'dropAfter':
        body.dropAt = Math.min(body.dropAt ?? fault.bytes, fault.bytes);
        break;
      case 'stallAfter':
        body.stallAt = Math.min(body.stallAt ?? fault.bytes, fault.bytes);
        break;
      case 'tamper':
        body.tamperAt.push(fault.offset);
        break;
    }
  }
  return false;
}

/** A 304 for a matching If-None-Match (or, without one, an If-Modified-Since the object is not newer than). */
function notModified(entry: RequestLogEntry, object: StoredObject): boolean {
  const etag = etagOf(object);
  if (entry.ifNoneMatch !== undefined) {
    const tags = entry.ifNoneMatch.split(',').map((tag) => tag.trim().replace(/^W\//, ''));
    return tags.includes(etag) || tags.includes('*');
  }
  if (entry.ifModifiedSince === undefined) return false;
  const since = Date.parse(entry.ifModifiedSince);
  return !Number.isNaN(since) && object.modified.getTime() <= since;
}

/**
 * The byte range to send, or undefined after answering 416: a strict origin, where anything but one
 * satisfiable byte range is refused, so a client's bad resume shows.
 */
function byteRange(
  entry: RequestLogEntry,
  object: StoredObject,
  headers: Record<string, string | number>,
  reply: Reply,
): { start: number; end: number; status: number } | undefined {
  const etag = etagOf(object);
  const lastModified = object.modified.toUTCString();
  const { range, ifRange } = entry;
  if (range === undefined || (ifRange !== undefined && ifRange !== etag && ifRange !== lastModified)) {
    return { start: 0, end: object.size, status: 200 };
  }
  const parsed = rangeParser(object.size, range);
  const only = parsed === -1 || parsed === -2 || parsed.type !== 'bytes' ? undefined : parsed;
  const first = only?.length === 1 ? only[0] : undefined;
  if (first === undefined) {
    reply(416, { ...headers, 'content-range': `bytes */${object.size}` }, '');
    return undefined;
  }
  headers['content-range'] = `bytes ${first.start}-${first.end}/${object.size}`;
  return { start: first.start, end: first.end + 1, status: 206 };
}

function tampered(chunk: Buffer, position: number, tamperAt: number[], copy: boolean): Buffer {
  let out = chunk;
  for (const offset of tamperAt) {
    if (offset >= position && offset < position + out.length) {
      if (copy && out === chunk) out = Buffer.from(chunk);
      out[offset - position] = (out[offset - position] ?? 0) ^ 0xff;
    }
  }
  return out;
}

/** Writes [start, end) of the object, damaged as the faults say; a drop cuts the socket, a stall waits. */
async function streamBody(
  object: StoredObject,
  span: { start: number; end: number },
  body: BodyFaults,
  entry: RequestLogEntry,
  response: ServerResponse,
): Promise<void> {
  const chunks: Iterable<Buffer> = object.content
    ? [object.content.subarray(span.start, span.end)]
    : generatedBytes(object.seed ?? '', span.start, span.end);
  let position = span.start;
  for (const original of chunks) {
    const chunk = tampered(original, position, body.tamperAt, object.content !== undefined);
    position += chunk.length;
    const cut = body.dropAt ?? body.stallAt;
    if (cut !== undefined && entry.bytesSent + chunk.length >= cut) {
      const piece = chunk.subarray(0, cut - entry.bytesSent);
      entry.bytesSent += piece.length;
      await new Promise<void>((done) => response.write(piece, () => done()));
      if (body.dropAt !== undefined) {
        entry.aborted = true;
        response.socket?.destroy();
      } else if (!response.destroyed) {
        await once(response, 'close');
      }
      return;
    }
    entry.bytesSent += chunk.length;
    if (!response.write(chunk)) await drainedOrClosed(response);
    if (response.destroyed) return;
  }
  response.end();
}

/** One request: logged, faults applied, then the object with validators, conditionals and ranges. */
export async function handleRequest(
  request: IncomingMessage,
  response: ServerResponse,
  state: OriginState,
): Promise<void> {
  const path = new URL(request.url ?? '/', 'http://sim.invalid').pathname;
  const entry = logEntry(request, path, state.requests);
  const { method } = entry;
  response.on('close', () => {
    if (!response.writableFinished) entry.aborted = true;
  });
  const reply: Reply = (status, headers = {}, text = '') => {
    entry.status = status;
    response.writeHead(status, { 'content-length': Buffer.byteLength(text), ...headers });
    response.end(method === 'HEAD' ? '' : text);
  };
  if (method !== 'GET' && method !== 'HEAD') {
    reply(405, { allow: 'GET, HEAD' }, 'method not allowed\n');
    return;
  }
  const taken = state.faults.take(path);
  entry.faults = taken.map((fault) => fault.kind);
  const body: BodyFaults = { tamperAt: [] };
  if (await applyFaults(taken, path, state, response, reply, body)) return;
  const object = state.store.resolve(path);
  if (!object) {
    reply(404, { 'content-type': 'text/plain' }, `not found: ${path}\n`);
    return;
  }
  const validators = { etag: etagOf(object), 'last-modified': object.modified.toUTCString() };
  if (notModified(entry, object)) {
    entry.status = 304;
    response.writeHead(304, validators).end();
    return;
  }
  const headers: Record<string, string | number> = {
    ...validators,
    'accept-ranges': 'bytes',
    'content-type':
      path.endsWith('.txt') || path.endsWith('.DIGESTS') ? 'text/plain' : 'application/octet-stream',
  };
  const span = byteRange(entry, object, headers, reply);
  if (span === undefined) return;
  headers['content-length'] = span.end - span.start;
  entry.status = span.status;
  response.writeHead(span.status, headers);
  if (method === 'HEAD') {
    response.end();
    return;
  }
  await streamBody(object, span, body, entry, response);
}
