import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

/**
 * A minimal HTTP/1.1 GET client for load generation: a pool of keep-alive `net` sockets, each sending the
 * same pre-serialised request bytes with one request in flight (no pipelining), and a byte-level response
 * parser that allocates nothing per response in the common case (headers and body arrive as Buffers that
 * are scanned in place, never turned into strings). `node:http`'s client costs several times as much CPU
 * per request, which near saturation on two cores shared with the server measures the generator instead
 * of the server.
 *
 * `send()` resolves with the status code, or with a description of what went wrong (never rejects), so a
 * caller counts failures without try/catch. When every connection is busy, requests wait in FIFO order.
 */

/** The status code of a complete response, or a description of why there is none. */
export type RawResult = number | string;

export interface ConnectionCloseEvent {
  /** 1-based, as in the error descriptions. */
  connection: number;
  /** Whether a request was waiting for its response when the socket closed. */
  inFlight: boolean;
  reason: string;
}

export interface RawClientOptions {
  url: string | URL;
  headers?: Record<string, string>;
  connections: number;
  /**
   * A socket idle longer than this is replaced by a fresh one rather than reused, so a request is not sent on
   * a socket the server is closing at that instant (Node's server drops keep-alive sockets idle for 5 s).
   * Default 2000 ms.
   */
  idleTimeoutMs?: number;
  /**
   * Source address every socket binds to, so a server that tells clients apart by address (the metadata
   * listener) sees this one as a particular instance. Default: whatever the kernel picks.
   */
  localAddress?: string;
  /** Told about every socket that closes other than through `close()`: for diagnostics and tests. */
  onConnectionClose?: (event: ConnectionCloseEvent) => void;
  /**
   * Requests sent in turn, one per `send()`, instead of the one GET of `url` and `headers`: e.g. POSTs
   * whose bodies differ (see `serialisePost`). `url` still names the server.
   */
  requests?: readonly Buffer[];
  /**
   * Builds each request as it is sent, instead of `requests` or the one GET: for a stream of requests too
   * many or too varied to hold serialised (a random instance per request). `url` still names the server.
   */
  nextRequest?: () => Buffer;
}

export interface RawClientStats {
  /** Sockets opened so far. */
  opened: number;
  /** Requests waiting for a free connection now. */
  queued: number;
}

export interface RawClient {
  send(): Promise<RawResult>;
  stats(): RawClientStats;
  /** Closes every socket; requests in flight or queued resolve with `client closed`. */
  close(): Promise<void>;
}

const LF = 10;
const CR = 13;
const SPACE = 32;
const TAB = 9;
const COLON = 58;
/** Past this many bytes of status line and headers (or of one chunk-size or trailer line), give up. */
const MAX_HEAD_BYTES = 64 * 1024;

const STATUS = 0;
const HEADERS = 1;
const BODY = 2;
const CHUNK_SIZE = 3;
const CHUNK_DATA = 4;
const CHUNK_DATA_END = 5;
const TRAILERS = 6;
const stateNames = [
  'the status line',
  'the headers',
  'the body',
  'a chunk size',
  'a chunk',
  'the CRLF after a chunk',
  'the trailers',
];

const lowerBytes = (name: string) => Uint8Array.from(name, (c) => c.charCodeAt(0));
const CONTENT_LENGTH = lowerBytes('content-length');
const TRANSFER_ENCODING = lowerBytes('transfer-encoding');
const CONNECTION = lowerBytes('connection');
const KEEP_ALIVE = lowerBytes('keep-alive');
const CLOSE = lowerBytes('close');
const HTTP_1 = lowerBytes('HTTP/1.');

function hexValue(byte: number): number {
  if (byte >= 48 && byte <= 57) return byte - 48;
  const lower = byte | 0x20;
  if (lower >= 97 && lower <= 102) return lower - 87;
  return -1;
}

/**
 * Incremental parser of HTTP/1.1 responses to GET requests. `execute` consumes bytes up to the end of one
 * response and stops there, so a caller sees each response's status before the next one's bytes; bytes
 * split anywhere across calls are handled. Bodies are skipped, by `content-length` or by chunked framing.
 */
export class ResponseParser {
  /** Set when `execute` stopped at the end of a response; the caller clears it. */
  complete = false;
  /** The first protocol error; the parser is unusable after one (call `reset`). */
  error: string | null = null;
  status = 0;
  /** Whether the connection may carry another request after this response. */
  keepAlive = true;
  private state = STATUS;
  private contentLength = -1;
  private chunked = false;
  private remaining = 0;
  private bodyBytes = 0;
  private headBytes = 0;
  private line = Buffer.allocUnsafe(256);
  private lineLength = 0;

  reset(): void {
    this.complete = false;
    this.error = null;
    this.state = STATUS;
    this.lineLength = 0;
    this.headBytes = 0;
    this.bodyBytes = 0;
  }

  /** True between the first byte of a response and its end. */
  get inResponse(): boolean {
    return this.state !== STATUS || this.lineLength > 0;
  }

  /** Where in a response the parser is, for error messages. */
  where(): string {
    if (!this.inResponse) return 'before the response';
    if (this.state === BODY) {
      return `mid-response, in the body after ${this.bodyBytes} of ${this.contentLength} bytes`;
    }
    const body = this.bodyBytes > 0 ? ` after ${this.bodyBytes} body bytes` : '';
    return `mid-response, in ${stateNames[this.state] ?? 'the response'}${body}`;
  }

  /**
   * Parses `buf` from `start` to `end`; returns the offset it stopped at (`end` unless a response ended
   * first). Nothing of `buf` is kept after the call, so a caller may reuse it.
   */
  execute(buf: Buffer, start: number, end = buf.length): number {
    let pos = start;
    while (pos < end) {
      const state = this.state;
      if (state === BODY || state === CHUNK_DATA) {
        const available = end - pos;
        const n = Math.min(available, this.remaining);
        pos += n;
        this.remaining -= n;
        this.bodyBytes += n;
        if (this.remaining === 0) {
          if (state === BODY) {
            this.finish();
            return pos;
          }
          this.state = CHUNK_DATA_END;
        }
        continue;
      }
      let newline = buf.indexOf(LF, pos);
      if (newline >= end) newline = -1;
      const lineEnd = newline === -1 ? end : newline;
      this.headBytes += lineEnd - pos + 1;
      if (this.headBytes > MAX_HEAD_BYTES) {
        this.error = `more than ${MAX_HEAD_BYTES} bytes in ${stateNames[state]}`;
        return end;
      }
      if (newline === -1) {
        this.appendLine(buf, pos, end);
        return end;
      }
      let source = buf;
      let from = pos;
      let to = newline;
      if (this.lineLength > 0) {
        this.appendLine(buf, pos, newline);
        source = this.line;
        from = 0;
        to = this.lineLength;
        this.lineLength = 0;
      }
      pos = newline + 1;
      if (to > from && source[to - 1] === CR) to--;
      this.onLine(source, from, to);
      if (this.error !== null) return end;
      if (this.complete) return pos;
    }
    return pos;
  }

  private appendLine(buf: Buffer, from: number, to: number): void {
    const needed = this.lineLength + (to - from);
    if (needed > this.line.length) {
      const grown = Buffer.allocUnsafe(Math.max(needed, this.line.length * 2));
      this.line.copy(grown, 0, 0, this.lineLength);
      this.line = grown;
    }
    buf.copy(this.line, this.lineLength, from, to);
    this.lineLength = needed;
  }

  private finish(): void {
    this.complete = true;
    this.state = STATUS;
    this.headBytes = 0;
  }

  private onLine(buf: Buffer, from: number, to: number): void {
    switch (this.state) {
      case STATUS:
        if (to === from) return; // tolerated: a stray CRLF between responses
        this.onStatusLine(buf, from, to);
        return;
      case HEADERS:
        if (to === from) this.onHeadersEnd();
        else this.onHeader(buf, from, to);
        return;
      case CHUNK_SIZE:
        this.onChunkSize(buf, from, to);
        return;
      case CHUNK_DATA_END:
        if (to !== from) this.error = 'a chunk is not followed by CRLF';
        else this.state = CHUNK_SIZE;
        return;
      case TRAILERS:
        if (to === from) this.finish();
        return;
    }
  }

  private onStatusLine(buf: Buffer, from: number, to: number): void {
    const length = to - from;
    let valid = length >= 12 && buf[from + 8] === SPACE && (length === 12 || buf[from + 12] === SPACE);
    for (let i = 0; valid && i < HTTP_1.length; i++) valid = buf[from + i] === HTTP_1[i];
    const minor = buf[from + 7];
    valid &&= minor === 48 || minor === 49;
    let status = 0;
    for (let i = 9; valid && i < 12; i++) {
      const digit = (buf[from + i] ?? 0) - 48;
      if (digit < 0 || digit > 9) valid = false;
      status = status * 10 + digit;
    }
    if (!valid || status < 100) {
      this.error = `not an HTTP/1.x status line: ${JSON.stringify(buf.toString('latin1', from, Math.min(to, from + 80)))}`;
      return;
    }
    this.status = status;
    this.keepAlive = minor === 49;
    this.contentLength = -1;
    this.chunked = false;
    this.bodyBytes = 0;
    this.state = HEADERS;
  }

  private onHeader(buf: Buffer, from: number, to: number): void {
    const first = buf[from];
    if (first === SPACE || first === TAB) return; // obsolete line folding: ignored
    // Only names of 10, 14 and 17 bytes matter: look for the colon in JS that far, natively past it.
    let colon = from;
    const near = Math.min(to, from + TRANSFER_ENCODING.length + 1);
    while (colon < near && buf[colon] !== COLON) colon++;
    if (colon === near) {
      colon = buf.indexOf(COLON, near);
      if (colon === -1 || colon >= to) {
        this.error = `header line without a colon: ${JSON.stringify(buf.toString('latin1', from, Math.min(to, from + 80)))}`;
      }
      return;
    }
    const nameLength = colon - from;
    if (nameLength !== 10 && nameLength !== 14 && nameLength !== 17) return;
    let valueFrom = colon + 1;
    let valueTo = to;
    while (valueFrom < valueTo && (buf[valueFrom] === SPACE || buf[valueFrom] === TAB)) valueFrom++;
    while (valueTo > valueFrom && (buf[valueTo - 1] === SPACE || buf[valueTo - 1] === TAB)) valueTo--;
    if (nameIs(buf, from, colon, CONTENT_LENGTH)) {
      let n = 0;
      for (let i = valueFrom; i < valueTo; i++) {
        const digit = (buf[i] ?? 0) - 48;
        if (digit < 0 || digit > 9) {
          n = -1;
          break;
        }
        n = n * 10 + digit;
      }
      if (n < 0 || valueTo === valueFrom || n > Number.MAX_SAFE_INTEGER) {
        this.error = `invalid content-length: ${JSON.stringify(buf.toString('latin1', valueFrom, valueTo))}`;
      } else if (this.contentLength >= 0 && this.contentLength !== n) {
        this.error = `conflicting content-length headers: ${this.contentLength} and ${n}`;
      } else {
        this.contentLength = n;
      }
    } else if (nameIs(buf, from, colon, TRANSFER_ENCODING)) {
      const value = buf.toString('latin1', valueFrom, valueTo).toLowerCase();
      const codings = value.split(',').map((coding) => coding.trim());
      if (codings.at(-1) === 'chunked' && codings.every((c) => c === 'chunked' || c === 'identity')) {
        this.chunked = true;
      } else {
        this.error = `unsupported transfer-encoding: ${JSON.stringify(value)} (only chunked is)`;
      }
    } else if (nameIs(buf, from, colon, CONNECTION)) {
      // The two usual values without building a string; anything else (a list) the slow way.
      if (nameIs(buf, valueFrom, valueTo, KEEP_ALIVE)) {
        this.keepAlive = true;
        return;
      }
      if (nameIs(buf, valueFrom, valueTo, CLOSE)) {
        this.keepAlive = false;
        return;
      }
      const options = buf
        .toString('latin1', valueFrom, valueTo)
        .toLowerCase()
        .split(',')
        .map((option) => option.trim());
      if (options.includes('close')) this.keepAlive = false;
      else if (options.includes('keep-alive')) this.keepAlive = true;
    }
  }

  private onHeadersEnd(): void {
    const status = this.status;
    if (status < 200) {
      if (status === 101) {
        this.error = 'the server switched protocols (101), which this client does not support';
        return;
      }
      this.state = STATUS; // an informational response: the real one follows
      return;
    }
    if (status === 204 || status === 304) {
      this.finish();
    } else if (this.chunked) {
      this.state = CHUNK_SIZE;
    } else if (this.contentLength === 0) {
      this.finish();
    } else if (this.contentLength > 0) {
      this.remaining = this.contentLength;
      this.state = BODY;
    } else {
      this.error = `HTTP ${status} response with neither content-length nor transfer-encoding: chunked (a body ended by closing the connection is not supported)`;
    }
  }

  private onChunkSize(buf: Buffer, from: number, to: number): void {
    let size = 0;
    let i = from;
    for (; i < to; i++) {
      const digit = hexValue(buf[i] ?? 0);
      if (digit < 0) break;
      size = size * 16 + digit;
    }
    const next = buf[i];
    const validEnd = i === to || next === 59 /* ; */ || next === SPACE || next === TAB;
    if (i === from || !validEnd || size > Number.MAX_SAFE_INTEGER) {
      this.error = `invalid chunk size line: ${JSON.stringify(buf.toString('latin1', from, Math.min(to, from + 80)))}`;
      return;
    }
    if (size === 0) {
      this.state = TRAILERS;
    } else {
      this.remaining = size;
      this.state = CHUNK_DATA;
    }
  }
}

/** Whether `buf[from, to)` is `lower` but for the case of letters (header names, connection options). */
function nameIs(buf: Buffer, from: number, to: number, lower: Uint8Array): boolean {
  if (to - from !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    const expected = lower[i] ?? 0;
    const byte = buf[from + i] ?? 0;
    // `lower` holds letters and '-' only; folding 0x20 into a byte of `buf` cannot make a letter of '-'.
    if ((expected === 45 ? byte : byte | 0x20) !== expected) return false;
  }
  return true;
}

type Resolve = (result: RawResult) => void;

function describeSocketError(error: Error): string {
  const code = (error as NodeJS.ErrnoException).code;
  return code === undefined ? error.message : code;
}

/** Serialises the one request every connection sends. */
export function serialiseGet(url: URL, headers: Record<string, string>): Buffer {
  const lines = [`GET ${url.pathname}${url.search} HTTP/1.1`];
  const names = new Set(Object.keys(headers).map((name) => name.toLowerCase()));
  if (names.has('connection') || names.has('content-length') || names.has('transfer-encoding')) {
    throw new Error('the raw client sets its own connection and framing headers');
  }
  if (!names.has('host')) lines.push(`Host: ${url.host}`);
  for (const [name, value] of Object.entries(headers)) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name) || /[\r\n\0]/.test(value)) {
      throw new Error(`invalid header ${JSON.stringify(name)}: ${JSON.stringify(value)}`);
    }
    lines.push(`${name}: ${value}`);
  }
  lines.push('Connection: keep-alive', '', '');
  return Buffer.from(lines.join('\r\n'), 'latin1');
}

/** Serialises a POST with its body (`Content-Length` framing), for `RawClientOptions.requests`. */
export function serialisePost(url: URL, headers: Record<string, string>, body: Buffer): Buffer {
  const head = serialiseGet(url, headers).toString('latin1');
  const withLength = head
    .replace(/^GET /, 'POST ')
    .replace(/\r\n\r\n$/, `\r\nContent-Length: ${body.length}\r\n\r\n`);
  return Buffer.concat([Buffer.from(withLength, 'latin1'), body]);
}

export function createRawClient(options: RawClientOptions): RawClient {
  const url = options.url instanceof URL ? options.url : new URL(options.url);
  if (url.protocol !== 'http:') throw new Error(`the raw client speaks plain http only, not ${url.protocol}`);
  if (!(Number.isInteger(options.connections) && options.connections > 0)) {
    throw new Error(`connections must be a positive integer, got ${options.connections}`);
  }
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port === '' ? 80 : Number(url.port);
  const requests = options.requests ?? [serialiseGet(url, options.headers ?? {})];
  if (requests.length === 0) throw new Error('requests, when given, must hold at least one request');
  let nextRequest = 0;
  const build = options.nextRequest;
  const idleTimeoutMs = options.idleTimeoutMs ?? 2000;
  const onConnectionClose = options.onConnectionClose;
  const localAddress = options.localAddress;
  const readBuffer = Buffer.allocUnsafe(64 * 1024);

  /** Connections with no request in flight, most recently used on top (open or not). */
  const free: Connection[] = [];
  /** A FIFO ring of resolvers waiting for a connection; grows by doubling, never shrinks. */
  let queue: Array<Resolve | undefined> = new Array(64);
  let queueHead = 0;
  let queueLength = 0;
  let opened = 0;
  let closed = false;

  const enqueue = (resolve: Resolve) => {
    if (queueLength === queue.length) {
      const grown: Array<Resolve | undefined> = new Array(queue.length * 2);
      for (let i = 0; i < queueLength; i++) grown[i] = queue[(queueHead + i) % queue.length];
      queue = grown;
      queueHead = 0;
    }
    queue[(queueHead + queueLength) % queue.length] = resolve;
    queueLength++;
  };
  const dequeue = (): Resolve | undefined => {
    if (queueLength === 0) return undefined;
    const resolve = queue[queueHead];
    queue[queueHead] = undefined;
    queueHead = (queueHead + 1) % queue.length;
    queueLength--;
    return resolve;
  };

  class Connection {
    socket: Socket | null = null;
    pending: Resolve | null = null;
    /** When the last request went out: a socket idle past `idleTimeoutMs` since then is replaced. */
    lastUsed = 0;
    socketError: string | null = null;
    readonly parser = new ResponseParser();
    constructor(readonly id: number) {}

    start(resolve: Resolve): void {
      this.pending = resolve;
      const now = performance.now();
      if (this.socket !== null && now - this.lastUsed > idleTimeoutMs) this.discard();
      if (this.socket === null) this.open();
      this.lastUsed = now;
      const bytes = build === undefined ? requests[nextRequest] : build();
      nextRequest = nextRequest + 1 === requests.length ? 0 : nextRequest + 1;
      if (bytes !== undefined) this.socket?.write(bytes);
    }

    private open(): void {
      opened++;
      this.parser.reset();
      this.socketError = null;
      // `onread` hands every read to the callback in one buffer shared by all connections (the parser keeps
      // no reference to it), instead of a new Buffer per read pushed through a Readable stream.
      const socket: Socket = connect({
        host,
        port,
        ...(localAddress === undefined ? {} : { localAddress }),
        noDelay: true,
        onread: {
          buffer: readBuffer,
          callback: (length) => {
            if (this.socket === socket) this.onData(readBuffer, length);
            return true;
          },
        },
      });
      this.socket = socket;
      socket.on('error', (error) => {
        if (this.socket === socket) this.socketError ??= describeSocketError(error);
      });
      socket.on('close', () => {
        if (this.socket === socket) this.onClose();
      });
    }

    /** Closes the socket on purpose; its events are ignored from now on. */
    discard(): void {
      const socket = this.socket;
      this.socket = null;
      socket?.destroy();
    }

    private onData(chunk: Buffer, length: number): void {
      const pending = this.pending;
      if (pending === null) {
        this.discard();
        onConnectionClose?.({
          connection: this.id,
          inFlight: false,
          reason: `${length} unexpected byte(s) from the server with no request in flight`,
        });
        return;
      }
      const parser = this.parser;
      const pos = parser.execute(chunk, 0, length);
      if (parser.error !== null) {
        this.fail(`protocol error on connection ${this.id}: ${parser.error}`);
        return;
      }
      if (!parser.complete) return;
      parser.complete = false;
      if (pos < length) {
        // One request in flight, so more bytes mean the server's framing and this parser disagree.
        this.fail(
          `protocol error on connection ${this.id}: ${length - pos} unexpected byte(s) after an HTTP ${parser.status} response`,
        );
        return;
      }
      this.pending = null;
      if (!parser.keepAlive) {
        this.discard();
        onConnectionClose?.({
          connection: this.id,
          inFlight: false,
          reason: 'the server asked to close the connection',
        });
      }
      pending(parser.status);
      release(this);
    }

    private onClose(): void {
      this.socket = null;
      const pending = this.pending;
      const cause = this.socketError ?? 'connection closed by the server';
      if (pending === null) {
        onConnectionClose?.({ connection: this.id, inFlight: false, reason: `${cause} while idle` });
        return; // already on the free stack: reopened when next taken
      }
      this.fail(`${cause} on connection ${this.id} (${this.parser.where()})`);
    }

    /** Resolves the request in flight with `description`, drops the socket and frees the connection. */
    private fail(description: string): void {
      const pending = this.pending;
      this.pending = null;
      this.discard();
      onConnectionClose?.({ connection: this.id, inFlight: true, reason: description });
      pending?.(description);
      release(this);
    }
  }

  const connections = Array.from({ length: options.connections }, (_, i) => new Connection(i + 1));
  for (let i = connections.length - 1; i >= 0; i--) free.push(connections[i] as Connection);

  function release(connection: Connection): void {
    const next = closed ? undefined : dequeue();
    if (next === undefined) free.push(connection);
    else connection.start(next);
  }

  const dispatch = (resolve: Resolve) => {
    const connection = free.pop();
    if (connection === undefined) enqueue(resolve);
    else connection.start(resolve);
  };

  return {
    send: () => (closed ? Promise.resolve('client closed') : new Promise<RawResult>(dispatch)),
    stats: () => ({ opened, queued: queueLength }),
    close: async () => {
      closed = true;
      const closing: Promise<unknown>[] = [];
      for (const connection of connections) {
        const { socket, pending } = connection;
        connection.pending = null;
        if (socket !== null && !socket.closed) {
          closing.push(new Promise((resolve) => socket.once('close', resolve)));
        }
        connection.discard();
        pending?.('client closed');
      }
      for (let resolve = dequeue(); resolve !== undefined; resolve = dequeue()) resolve('client closed');
      await Promise.all(closing);
    },
  };
}
