import { type Context, Hono, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { apiPaths, honoPath } from '../api-routes.ts';
import { TransientError } from '../errors.ts';
import {
  checkGroupName,
  InvalidGroupError,
  parseGroupInput,
  type UpdateGroup,
  type UpdateGroupInput,
} from '../update/groups.ts';
import { maxOmahaBodyBytes } from '../update/omaha-request.ts';
import { buildOmahaRefusal } from '../update/omaha-response.ts';
import type { UpdateRouteDeps } from '../update/wiring.ts';

const maxGroupBodyBytes = 8 * 1024;
/** Seconds update_engine is told to wait when the ledger cannot be read. */
const omahaRetryAfterSeconds = 60;

function problem(c: Context, status: ContentfulStatusCode, code: string, message: string, extra = {}) {
  c.header('Cache-Control', 'no-store');
  return c.json({ error: { code, message, ...extra } }, status);
}

function xml(c: Context, status: ContentfulStatusCode, body: string): Response {
  return c.body(body, status, {
    'Content-Type': 'application/xml; charset=utf-8',
    'Cache-Control': 'no-store',
  });
}

/** `POST /v1/update/` and `/v1/update`: Omaha, unauthenticated (instances send no credentials). */
function mountOmaha(app: Hono, deps: UpdateRouteDeps): void {
  const tooLarge = (c: Context) =>
    xml(c, 413, buildOmahaRefusal('too-large', `request body is larger than ${maxOmahaBodyBytes} bytes`));
  const streamed = bodyLimit({ maxSize: maxOmahaBodyBytes, onError: tooLarge });
  // A declared length is checked from the header alone: Hono's bodyLimit reads `req.raw.body`, which on
  // Node turns the server's light request into a full web Request, the largest cost of a check. A body
  // without a length (chunked) goes through bodyLimit, which counts while it reads.
  const limit: MiddlewareHandler = async (c, next) => {
    const declared = c.req.header('content-length');
    if (declared === undefined || c.req.header('transfer-encoding') !== undefined) return streamed(c, next);
    if (!/^[0-9]{1,15}$/.test(declared) || Number(declared) > maxOmahaBodyBytes) return tooLarge(c);
    await next();
  };
  const answer = async (c: Context) => {
    const body = await c.req.text();
    try {
      const result = await deps.omaha.answer(body);
      return xml(c, result.status, result.body);
    } catch (error) {
      if (!(error instanceof TransientError)) throw error;
      c.header('Retry-After', String(omahaRetryAfterSeconds));
      return xml(
        c,
        503,
        buildOmahaRefusal('unavailable', 'the update service cannot read its state; retry later'),
      );
    }
  };
  for (const path of [apiPaths.update, `${apiPaths.update}/`]) app.post(path, limit, answer);
}

/** The group name of the path, or the 400 that names what is wrong with it. */
function nameOf(c: Context): string | Response {
  const name = c.req.param('name') ?? '';
  const bad = checkGroupName(name);
  return bad === undefined ? name : problem(c, 400, 'bad-request', bad, { path: 'name' });
}

const notFound = (c: Context, name: string) => problem(c, 404, 'not-found', `no update group named ${name}`);

/** The body of a group PUT, or the 400 that names each bad field. */
async function groupInputOf(c: Context): Promise<UpdateGroupInput | Response> {
  let body: unknown;
  try {
    body = JSON.parse(await c.req.text());
  } catch (cause) {
    return problem(c, 400, 'invalid-json', `request body is not JSON: ${(cause as Error).message}`, {
      path: '$',
    });
  }
  try {
    return parseGroupInput(body);
  } catch (error) {
    if (!(error instanceof InvalidGroupError)) throw error;
    return problem(c, 400, error.code, error.message, { issues: error.issues });
  }
}

/** Creates or replaces a group; a pin keeps its start time while the pinned version stays the same. */
function putGroup(deps: UpdateRouteDeps) {
  return async (c: Context) => {
    const name = nameOf(c);
    if (name instanceof Response) return name;
    const input = await groupInputOf(c);
    if (input instanceof Response) return input;
    const now = deps.clock().toISOString();
    const before = await deps.groups.getGroup(name);
    const pinnedAt =
      input.version === undefined
        ? undefined
        : before?.version === input.version
          ? (before.pinnedAt ?? before.updatedAt)
          : now;
    const group: UpdateGroup = {
      ...input,
      name,
      updatedAt: now,
      ...(pinnedAt === undefined ? {} : { pinnedAt }),
    };
    const created = await deps.groups.putGroup(group);
    deps.omaha.forgetGroup(name);
    c.header('Cache-Control', 'no-store');
    return c.json(group, created ? 201 : 200);
  };
}

function setPaused(deps: UpdateRouteDeps, paused: boolean) {
  return async (c: Context) => {
    const name = nameOf(c);
    if (name instanceof Response) return name;
    const group = await deps.groups.getGroup(name);
    if (group === undefined) return notFound(c, name);
    const next: UpdateGroup = { ...group, paused, updatedAt: deps.clock().toISOString() };
    await deps.groups.putGroup(next);
    deps.omaha.forgetGroup(name);
    c.header('Cache-Control', 'no-store');
    return c.json(next);
  };
}

/** The admin routes of update groups; `requireAdmin` is the instance admin routes' own check. */
function mountGroups(app: Hono, deps: UpdateRouteDeps, requireAdmin: MiddlewareHandler): void {
  const groupPath = honoPath(apiPaths.updateGroup);
  app.get(honoPath(apiPaths.updateGroups), requireAdmin, async (c) => {
    c.header('Cache-Control', 'no-store');
    return c.json({ groups: await deps.groups.listGroups() });
  });
  app.get(groupPath, requireAdmin, async (c) => {
    const name = nameOf(c);
    if (name instanceof Response) return name;
    const group = await deps.groups.getGroup(name);
    if (group === undefined) return notFound(c, name);
    c.header('Cache-Control', 'no-store');
    return c.json(group);
  });
  const groupLimit = bodyLimit({
    maxSize: maxGroupBodyBytes,
    onError: (c) => problem(c, 413, 'too-large', `request body is larger than ${maxGroupBodyBytes} bytes`),
  });
  app.put(groupPath, requireAdmin, groupLimit, putGroup(deps));
  app.delete(groupPath, requireAdmin, async (c) => {
    const name = nameOf(c);
    if (name instanceof Response) return name;
    const deleted = await deps.groups.deleteGroup(name);
    deps.omaha.forgetGroup(name);
    return deleted ? c.body(null, 204) : notFound(c, name);
  });
  app.post(honoPath(apiPaths.updateGroupPause), requireAdmin, setPaused(deps, true));
  app.post(honoPath(apiPaths.updateGroupResume), requireAdmin, setPaused(deps, false));
}

/** The Omaha endpoint and the admin routes of update groups. */
export function createUpdateRoutes(deps: UpdateRouteDeps, requireAdmin: MiddlewareHandler): Hono {
  const app = new Hono();
  mountOmaha(app, deps);
  mountGroups(app, deps, requireAdmin);
  return app;
}
