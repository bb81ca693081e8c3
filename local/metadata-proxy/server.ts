import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { describeError } from '../../shared/errors.ts';
import type { Logger } from '../runtime/log.ts';
import { type ApiClient, MetadataApiRefusedError } from './api-client.ts';
import type { InstanceCache } from './instance-cache.ts';
import { proxyRetryAfterSeconds } from './options.ts';
import {
  checkPath,
  forwardableHeaders,
  forwardedResponseHeaders,
  isRefusedTokenRequest,
  normalizeAddress,
} from './request-rules.ts';

export interface MetadataProxyOptions {
  host: string;
  port: number;
  /** Largest response body passed back; a bigger one is cut off and logged. */
  maxResponseBytes: number;
  /** How long a client may take to send its request headers. */
  requestTimeoutMs: number;
  /** How long in-flight requests may finish after `close()` before their sockets are cut. */
  shutdownGraceMs: number;
}

export interface MetadataProxyDeps {
  api: ApiClient;
  cache: InstanceCache;
  logger: Logger;
}

export interface RunningProxy {
  url: string;
  port: number;
  /** Stops accepting, lets requests in flight finish (up to the grace period), then closes every socket. */
  close(): Promise<void>;
}

const allowedMethods = new Set(['GET', 'HEAD', 'PUT']);

function answer(
  res: ServerResponse,
  status: number,
  message: string,
  extra: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = `${message}\n`;
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    ...extra,
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

function unavailable(res: ServerResponse, status: 502 | 503): void {
  answer(res, status, status === 503 ? 'metadata service unavailable' : 'bad gateway', {
    'Retry-After': String(proxyRetryAfterSeconds),
  });
}

/** Streams the API's answer back: status, the allowlisted headers, the body up to the limit. */
function relay(
  upstream: IncomingMessage,
  res: ServerResponse,
  limit: number,
  onCut: () => void,
): Promise<void> {
  const headers: Record<string, string> = {};
  for (const name of forwardedResponseHeaders) {
    const value = upstream.headers[name];
    if (typeof value === 'string') headers[name] = value;
  }
  res.writeHead(upstream.statusCode ?? 502, headers);
  return new Promise((resolve) => {
    let sent = 0;
    upstream.on('data', (chunk: Buffer) => {
      sent += chunk.length;
      if (sent > limit) {
        onCut();
        upstream.destroy();
        res.destroy();
        return;
      }
      if (!res.write(chunk)) {
        upstream.pause();
        res.once('drain', () => upstream.resume());
      }
    });
    upstream.once('end', () => {
      res.end();
      resolve();
    });
    upstream.once('error', () => {
      res.destroy();
      resolve();
    });
    upstream.once('close', resolve);
    res.once('close', () => {
      if (!upstream.complete) upstream.destroy();
      resolve();
    });
  });
}

type Screened =
  | { ok: true; path: string; headers: Record<string, string> }
  | { ok: false; status: 400 | 403 | 405 | 413; message: string; extra?: Record<string, string> };

/** Everything about the request itself that can be refused before asking the API anything. */
function screen(req: IncomingMessage): Screened {
  const path = checkPath(req.url);
  if (!path.ok) return { ok: false, status: 400, message: `bad request: ${path.reason}` };
  if (!allowedMethods.has(req.method ?? '')) {
    return {
      ok: false,
      status: 405,
      message: 'method not allowed',
      extra: { Allow: [...allowedMethods].join(', ') },
    };
  }
  if (req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0) {
    return { ok: false, status: 413, message: 'metadata requests carry no body' };
  }
  if (isRefusedTokenRequest(req.method, path.path, req.headers)) {
    return { ok: false, status: 403, message: 'forbidden: a token request may not carry X-Forwarded-For' };
  }
  const headers = forwardableHeaders(req.headers);
  if (!headers.ok) return { ok: false, status: 400, message: `bad request: ${headers.reason}` };
  return { ok: true, path: path.path, headers: headers.headers };
}

/** Forwards to the API as `instanceId` and relays the answer; resolves with the status for the log. */
async function forward(
  req: IncomingMessage,
  res: ServerResponse,
  request: { path: string; headers: Record<string, string>; instanceId: string; address: string },
  context: { deps: MetadataProxyDeps; options: MetadataProxyOptions; logFields: Record<string, unknown> },
): Promise<{ status: number; cut?: boolean }> {
  const { deps, options, logFields } = context;
  let upstream: IncomingMessage;
  try {
    upstream = await deps.api.forward({ method: req.method ?? 'GET', ...request });
  } catch (error) {
    deps.logger.warn('proxy.api_unavailable', { ...logFields, reason: describeError(error) });
    unavailable(res, 503);
    return { status: 503 };
  }
  const status = upstream.statusCode ?? 502;
  if (status === 403) {
    // The API refuses an instance-id signature only when the secrets differ: the instance cannot fix that.
    upstream.resume();
    deps.logger.error('proxy.signature_refused', {
      ...logFields,
      action: 'the API does not accept this proxy secret; check --secret-file against the API secret',
    });
    unavailable(res, 502);
    return { status: 502 };
  }
  const declared = Number(upstream.headers['content-length'] ?? 0);
  if (declared > options.maxResponseBytes) {
    upstream.destroy();
    deps.logger.error('proxy.response_too_large', { ...logFields, bytes: declared });
    unavailable(res, 502);
    return { status: 502 };
  }
  let cut = false;
  await relay(upstream, res, options.maxResponseBytes, () => {
    cut = true;
    deps.logger.error('proxy.response_too_large', { ...logFields, limit: options.maxResponseBytes });
  });
  return cut ? { status, cut } : { status };
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  deps: MetadataProxyDeps,
  options: MetadataProxyOptions,
): Promise<void> {
  const started = performance.now();
  const address = normalizeAddress(req.socket.remoteAddress ?? '');
  const logFields: Record<string, unknown> = { method: req.method, address };
  const finish = (status: number, fields: Record<string, unknown> = {}) => {
    deps.logger.info('proxy.request', {
      ...logFields,
      status,
      ms: Math.round((performance.now() - started) * 10) / 10,
      ...fields,
    });
  };

  const screened = screen(req);
  if (!screened.ok) {
    answer(res, screened.status, screened.message, screened.extra);
    return finish(screened.status, { refused: screened.message });
  }
  logFields.path = screened.path;

  let instanceId: string | undefined;
  try {
    instanceId = (await deps.cache.resolve(address, (a) => deps.api.lookup(a))).instanceId;
  } catch (error) {
    const refused = error instanceof MetadataApiRefusedError;
    deps.logger.log(refused ? 'error' : 'warn', refused ? 'proxy.lookup_refused' : 'proxy.api_unavailable', {
      address,
      reason: describeError(error),
    });
    unavailable(res, refused ? 502 : 503);
    return finish(refused ? 502 : 503);
  }
  if (instanceId === undefined) {
    answer(res, 404, 'not found');
    return finish(404, { instance: null });
  }
  logFields.instance = instanceId;
  const outcome = await forward(
    req,
    res,
    { path: screened.path, headers: screened.headers, instanceId, address },
    { deps, options, logFields },
  );
  finish(outcome.status, outcome.cut === true ? { cut: true } : {});
}

/** The metadata proxy's HTTP listener; everything it needs is passed in, so tests run it in process. */
export function startMetadataProxy(
  options: MetadataProxyOptions,
  deps: MetadataProxyDeps,
): Promise<RunningProxy> {
  const sockets = new Set<Socket>();
  const server: Server = createServer(
    {
      requestTimeout: options.requestTimeoutMs,
      headersTimeout: options.requestTimeoutMs,
      maxHeaderSize: 16_384,
    },
    (req, res) => {
      handle(req, res, deps, options).catch((error: unknown) => {
        deps.logger.error('proxy.internal_error', { reason: describeError(error) });
        if (!res.headersSent) answer(res, 500, 'internal error');
        else res.destroy();
      });
    },
  );
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('clientError', (error, socket) => {
    if (socket.writable)
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else socket.destroy();
    deps.logger.debug('proxy.client_error', { reason: error.message });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      const info = server.address() as AddressInfo;
      const host = info.family === 'IPv6' ? `[${info.address}]` : info.address;
      resolve({
        url: `http://${host}:${info.port}`,
        port: info.port,
        close: () =>
          new Promise<void>((done) => {
            const cut = setTimeout(() => {
              for (const socket of sockets) socket.destroy();
            }, options.shutdownGraceMs);
            cut.unref();
            server.close(() => {
              clearTimeout(cut);
              done();
            });
            server.closeIdleConnections();
          }),
      });
    });
  });
}
