import { type Context, Hono, type MiddlewareHandler } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { apiPaths, honoPath } from '../api-routes.ts';
import type { CldistConfig } from '../config.ts';
import { versionPattern } from '../messages.ts';
import {
  ConfirmationRequiredError,
  listReleaseSummaries,
  type ReleaseAdminDeps,
  ReleaseNotFoundError,
  retryRelease,
} from '../mirror/release-admin.ts';
import { type ReleaseState, releaseStates } from '../mirror/release-state.ts';

const plainName = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const maxRetryBodyBytes = 1024;

function problem(c: Context, status: ContentfulStatusCode, code: string, message: string, extra = {}) {
  c.header('Cache-Control', 'no-store');
  return c.json({ error: { code, message, ...extra } }, status);
}

/** The first bad parameter, named, or undefined when all are well-formed. */
function badParameter(params: Record<string, string | undefined>): string | undefined {
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined) continue;
    const ok = name === 'version' ? versionPattern.test(value) && value.length <= 64 : plainName.test(value);
    if (!ok) {
      return name === 'version'
        ? `${name} "${value}" is not a version of digits and dots (e.g. 4081.2.0)`
        : `${name} "${value}" is not a plain lower-case name (e.g. flatcar, stable, amd64-usr)`;
    }
  }
  return undefined;
}

/**
 * The operator's view of releases: `GET /v1/releases[?state=&source=&channel=&board=]` and
 * `POST /v1/releases/{source}/{channel}/{board}/{version}/retry` with `{"confirmFinal": true}` to reopen final
 * refusals. Admin routes: `requireAdmin` is the instance admin routes' own check.
 */
export function createReleaseRoutes(
  deps: ReleaseAdminDeps,
  config: CldistConfig,
  requireAdmin: MiddlewareHandler,
): Hono {
  const app = new Hono();
  app.get(honoPath(apiPaths.releases), requireAdmin, async (c) => {
    const state = c.req.query('state');
    if (state !== undefined && !releaseStates.includes(state as ReleaseState)) {
      return problem(c, 400, 'bad-request', `state "${state}" is not one of ${releaseStates.join(', ')}`, {
        path: 'state',
      });
    }
    const source = c.req.query('source');
    const channel = c.req.query('channel');
    const board = c.req.query('board');
    const bad = badParameter({ source, channel, board });
    if (bad !== undefined) return problem(c, 400, 'bad-request', bad, { path: bad.split(' ')[0] });
    const releases = await listReleaseSummaries(
      { ...(state === undefined ? {} : { state: state as ReleaseState }), source, channel, board },
      deps,
    );
    c.header('Cache-Control', 'no-store');
    return c.json({ releases });
  });

  app.post(honoPath(apiPaths.releaseRetry), requireAdmin, async (c) => {
    const ref = {
      source: c.req.param('source'),
      channel: c.req.param('channel'),
      board: c.req.param('board'),
      version: c.req.param('version'),
    };
    const bad = badParameter(ref);
    if (bad !== undefined) return problem(c, 400, 'bad-request', bad, { path: bad.split(' ')[0] });
    const text = await c.req.text();
    if (text.length > maxRetryBodyBytes) {
      return problem(c, 413, 'too-large', `request body is larger than ${maxRetryBodyBytes} bytes`);
    }
    let confirmFinal = false;
    if (text.trim() !== '') {
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch (cause) {
        return problem(c, 400, 'invalid-json', `request body is not JSON: ${(cause as Error).message}`, {
          path: '$',
        });
      }
      const flag = (body as { confirmFinal?: unknown } | null)?.confirmFinal;
      if (flag !== undefined && typeof flag !== 'boolean') {
        return problem(c, 400, 'bad-request', 'confirmFinal must be true or false', { path: 'confirmFinal' });
      }
      confirmFinal = flag === true;
    }
    try {
      const result = await retryRelease(ref, { confirmFinal }, deps, config);
      c.header('Cache-Control', 'no-store');
      return c.json(result);
    } catch (error) {
      if (error instanceof ReleaseNotFoundError) return problem(c, 404, error.code, error.message);
      if (error instanceof ConfirmationRequiredError) {
        return problem(c, 409, error.code, error.message, { artifacts: error.artifacts });
      }
      throw error;
    }
  });
  return app;
}
