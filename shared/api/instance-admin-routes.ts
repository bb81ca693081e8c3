import { type Context, Hono, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { stream } from 'hono/streaming';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { apiPaths, honoPath } from '../api-routes.ts';
import type { CldistConfig } from '../config.ts';
import { PermanentError, TransientError } from '../errors.ts';
import {
  deleteInstancesByPrefix,
  InstanceExistsError,
  InvalidAdminQueryError,
  listInstances,
  parseCursor,
  parseLimit,
  parsePrefix,
  reserveInstance,
  revokeInstanceToken,
} from '../instances/admin.ts';
import { splitJsonLines } from '../instances/bulk.ts';
import { putMany } from '../instances/bulk-put.ts';
import type { BulkPutItem } from '../instances/bulk-write.ts';
import type { InstanceServiceDeps } from '../instances/service.ts';
import type { ConfigKind, InstanceRecord } from '../instances/types.ts';

/** Reserve and revoke bodies are a deadline and instance parameters: a few KiB at most. */
const maxSmallBodyBytes = 64 * 1024;

export interface InstanceAdminRouteOptions {
  deps: InstanceServiceDeps;
  config: CldistConfig;
  requireAdmin: MiddlewareHandler;
  /** The base of the URLs handed out: `api.publicBaseUrl`, or the request's own origin. */
  baseUrl: (c: Context) => string;
  onInternalError: (error: unknown) => void;
}

/**
 * The URLs an instance fetches with its token. A reserved record has no kind yet, so both are given; the
 * token is left out when it was not issued by this request (a PUT that kept a reservation's token).
 */
export function configUrls(
  base: string,
  record: Pick<InstanceRecord, 'id' | 'kind' | 'reservedUntil'>,
  token: string | undefined,
): { ignitionUrl?: string; cloudConfigUrl?: string } {
  const url = `${base}/v1/instances/${encodeURIComponent(record.id)}`;
  const query = token === undefined ? '' : `?token=${encodeURIComponent(token)}`;
  const kinds: ConfigKind[] =
    record.reservedUntil === undefined ? [record.kind] : ['ignition', 'cloud-config'];
  return {
    ...(kinds.includes('ignition') ? { ignitionUrl: `${url}/ignition${query}` } : {}),
    ...(kinds.includes('cloud-config') ? { cloudConfigUrl: `${url}/cloud-config${query}` } : {}),
  };
}

function problem(c: Context, status: ContentfulStatusCode, code: string, message: string, extra = {}) {
  c.header('Cache-Control', 'no-store');
  return c.json({ error: { code, message, ...extra } }, status);
}

/** Errors only these routes raise; the rest go to the app's own error mapping. */
function mapped(c: Context, error: unknown): Response {
  if (error instanceof InvalidAdminQueryError) {
    return problem(c, 400, error.code, error.message, { path: error.path });
  }
  if (error instanceof InstanceExistsError) return problem(c, 409, error.code, error.message);
  throw error;
}

async function jsonBody(c: Context): Promise<unknown> {
  const text = await c.req.text();
  if (text.trim() === '') return {};
  return JSON.parse(text);
}

function bulkLine(item: BulkPutItem, base: string): Record<string, unknown> {
  if ('error' in item) return item;
  const { result } = item;
  return {
    line: item.line,
    id: item.id,
    created: result.created,
    ...(result.token === undefined ? { tokenKept: true } : { token: result.token }),
    ...configUrls(base, result.record, result.token),
    etag: result.record.etag,
    ...(result.record.specVersion === undefined ? {} : { specVersion: result.record.specVersion }),
    warnings: result.warnings,
  };
}

type Handler = (c: Context) => Promise<Response>;

/**
 * Bulk register: JSON lines in, read as they arrive; one JSON line out per instance as soon as the ledger
 * transaction holding its record is written (100 records a transaction, all or none). The first line that
 * fails (bad input, a conflicting write, an unavailable ledger or store) is answered with its error and
 * ends the run: every line answered before it is registered, nothing from it on is.
 */
function bulkPutHandler(options: InstanceAdminRouteOptions): Handler {
  const { deps, config, baseUrl } = options;
  return async (c) => {
    const strict = c.req.query('strict');
    if (strict !== undefined && strict !== 'true' && strict !== 'false') {
      return problem(c, 400, 'invalid-query', 'strict must be "true" or "false"', { path: '?strict' });
    }
    const body = c.req.raw.body;
    const base = baseUrl(c);
    c.header('Content-Type', 'application/x-ndjson');
    c.header('Cache-Control', 'no-store');
    return stream(c, async (out) => {
      let registered = 0;
      try {
        const lines = splitJsonLines(chunksOf(body));
        for await (const item of putMany(lines, { strict: strict === 'true' }, deps, config)) {
          await out.write(`${JSON.stringify(bulkLine(item, base))}\n`);
          if ('error' in item) return;
          registered++;
        }
        await out.write(`${JSON.stringify({ done: true, registered })}\n`);
      } catch (error) {
        options.onInternalError(error);
        await out.write(`${JSON.stringify({ error: { code: 'internal', message: 'internal error' } })}\n`);
      }
    });
  };
}

function bulkDeleteQuery(c: Context): { prefix: string; limit: number } {
  const query = { prefix: parsePrefix(c.req.query('prefix')), limit: parseLimit(c.req.query('limit')) };
  if (query.prefix === '') {
    throw new InvalidAdminQueryError('?prefix', 'is required: bulk delete never removes every instance');
  }
  if (c.req.query('confirm') !== 'true') {
    throw new InvalidAdminQueryError(
      '?confirm',
      `must be "true": this deletes every instance whose id starts with "${query.prefix}"`,
    );
  }
  return query;
}

/** Bulk delete by prefix, in bounded rounds, one JSON line per deleted instance. */
function bulkDeleteHandler(options: InstanceAdminRouteOptions): Handler {
  const { deps } = options;
  return async (c) => {
    let query: { prefix: string; limit: number };
    try {
      query = bulkDeleteQuery(c);
    } catch (error) {
      return mapped(c, error);
    }
    c.header('Content-Type', 'application/x-ndjson');
    c.header('Cache-Control', 'no-store');
    return stream(c, async (out) => {
      let deleted = 0;
      try {
        const run = deleteInstancesByPrefix(query, deps);
        for (let step = await run.next(); ; step = await run.next()) {
          if (step.done === true) {
            await out.write(`${JSON.stringify({ done: true, deleted, more: step.value.more })}\n`);
            return;
          }
          deleted++;
          await out.write(`${JSON.stringify({ id: step.value, deleted: true })}\n`);
        }
      } catch (error) {
        const known = error instanceof PermanentError || error instanceof TransientError;
        if (!known) options.onInternalError(error);
        const answer = known
          ? { code: error instanceof TransientError ? 'unavailable' : error.code, message: error.message }
          : { code: 'internal', message: 'internal error' };
        await out.write(`${JSON.stringify({ error: answer })}\n`);
      }
    });
  };
}

function reserveHandler(options: InstanceAdminRouteOptions): Handler {
  const { deps, baseUrl } = options;
  return async (c) => {
    let body: unknown;
    try {
      body = await jsonBody(c);
    } catch (cause) {
      return problem(c, 400, 'invalid-json', `request body is not JSON: ${(cause as Error).message}`, {
        path: '$',
      });
    }
    try {
      const { token, record } = await reserveInstance({ id: c.req.param('id') ?? '', body }, deps);
      c.header('Cache-Control', 'no-store');
      return c.json(
        { token, ...configUrls(baseUrl(c), record, token), reservedUntil: record.reservedUntil },
        201,
      );
    } catch (error) {
      return mapped(c, error);
    }
  };
}

/**
 * The fleet-sized admin routes: list with paging, bulk PUT and bulk DELETE as JSON lines (each line is
 * written as soon as its instance is, so a client can act on it and a cut connection loses nothing it was
 * told), reserve and revoke. Same admin check as the single-instance routes.
 */
export function createInstanceAdminRoutes(options: InstanceAdminRouteOptions): Hono {
  const { deps, requireAdmin, baseUrl } = options;
  const app = new Hono();
  const smallBody = bodyLimit({
    maxSize: maxSmallBodyBytes,
    onError: (c) => problem(c, 413, 'too-large', `request body is larger than ${maxSmallBodyBytes} bytes`),
  });

  app.get(apiPaths.instances, requireAdmin, async (c) => {
    try {
      const page = await listInstances(
        {
          prefix: parsePrefix(c.req.query('prefix')),
          limit: parseLimit(c.req.query('limit')),
          after: parseCursor(c.req.query('cursor')),
        },
        deps,
      );
      c.header('Cache-Control', 'no-store');
      return c.json(page);
    } catch (error) {
      return mapped(c, error);
    }
  });
  app.post(apiPaths.instances, requireAdmin, bulkPutHandler(options));
  app.delete(apiPaths.instances, requireAdmin, bulkDeleteHandler(options));
  app.post(honoPath(apiPaths.instanceReserve), requireAdmin, smallBody, reserveHandler(options));
  app.post(honoPath(apiPaths.instanceRevoke), requireAdmin, smallBody, async (c) => {
    const { token, record } = await revokeInstanceToken(c.req.param('id'), deps);
    c.header('Cache-Control', 'no-store');
    return c.json({
      token,
      ...configUrls(baseUrl(c), record, token),
      ...(record.reservedUntil === undefined ? {} : { reservedUntil: record.reservedUntil }),
    });
  });
  return app;
}

async function* chunksOf(body: ReadableStream<Uint8Array> | null): AsyncGenerator<Uint8Array> {
  if (body === null) return;
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}
