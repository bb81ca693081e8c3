import { createHash, timingSafeEqual } from 'node:crypto';
import { type Context, Hono, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { apiPaths, honoPath } from '../api-routes.ts';
import { type BootApiDeps, createBootRoutes } from '../boot/routes.ts';
import type { CldistConfig } from '../config.ts';
import { describeError, TransientError } from '../errors.ts';
import { InstanceConflictError } from '../instances/errors.ts';
import {
  AddressInUseError,
  createBodyCache,
  deleteInstance,
  describeInstance,
  expectedBodyForms,
  fetchInstanceConfig,
  InstanceNotFoundError,
  type InstanceServiceDeps,
  InvalidInstanceConfigError,
  maxInstanceBodyBytes,
  putInstanceConfig,
} from '../instances/service.ts';
import type { ConfigKind } from '../instances/types.ts';
import { redactPaths } from '../log-safety.ts';
import { type ProxySecretsProvider, peerAddress } from '../metadata/identity.ts';
import { createConfigMerger } from '../metadata/merge.ts';
import { mountProxiedMetadata } from '../metadata/proxied.ts';
import type { ReleaseAdminDeps } from '../mirror/release-admin.ts';
import type { UpdateRouteDeps } from '../update/wiring.ts';
import { createFleetRoutes, type FleetApiDeps } from './fleet-routes.ts';
import { gatewayIamCaller } from './iam-caller.ts';
import { configUrls, createInstanceAdminRoutes } from './instance-admin-routes.ts';
import { createReleaseRoutes } from './release-routes.ts';
import { createUpdateRoutes } from './update-routes.ts';

/**
 * How admin callers are authenticated. On AWS the API Gateway IAM authorizer checks the caller before the
 * request reaches the app; the app still requires the caller the authorizer put in the event, so a route
 * deployed without the authorizer refuses instead of letting anyone in. On one machine the app checks a
 * bearer token itself.
 */
export type AdminAuth = { kind: 'iam' } | { kind: 'bearer'; token: string };

/** The service's dependencies plus what only HTTP needs; the host (Lambda or local runner) builds them. */
export interface ApiDeps extends InstanceServiceDeps {
  adminAuth: AdminAuth;
  /** The release admin routes (list, retry); absent where the host has no ledger or job queue for them. */
  releases?: ReleaseAdminDeps;
  /** Told about unexpected (500) errors, which never reach the client; default stderr. */
  onInternalError?: (error: unknown) => void;
  /** The metadata proxy's shared secrets; without them the proxied metadata routes answer 404. */
  proxySecrets?: ProxySecretsProvider;
  /** Bare-metal boot (profiles, selectors, iPXE and GRUB scripts); absent: those routes answer 404. */
  boot?: BootApiDeps;
  /** The fleet view (`GET /v1/fleet`) and the recorder the Omaha endpoint writes check-ins to. */
  fleet?: FleetApiDeps;
  /** The Omaha endpoint and the update group routes; absent, they answer 404. */
  updates?: UpdateRouteDeps;
}

/** Seconds Ignition (or any client) is told to wait before retrying a 503. */
export const retryAfterSeconds = 5;

interface ErrorBody {
  error: {
    code: string;
    message: string;
    path?: string;
    holder?: string;
    issues?: { path: string; message: string }[];
  };
}

const notFoundBody: ErrorBody = { error: { code: 'not-found', message: 'not found' } };

function errorResponse(c: Context, status: ContentfulStatusCode, body: ErrorBody): Response {
  c.header('Cache-Control', 'no-store');
  return c.json(body, status);
}

function bearerToken(header: string | undefined): string | undefined {
  const match = header === undefined ? null : /^Bearer[ \t]+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

function adminAllowed(auth: AdminAuth, header: string | undefined, env: unknown): boolean {
  if (auth.kind === 'iam') return gatewayIamCaller(env) !== undefined;
  const given = bearerToken(header);
  return given !== undefined && timingSafeEqual(sha256(given), sha256(auth.token));
}

/** Maps the core's error classes onto statuses; anything else is a 500 that tells the client nothing. */
function handleApiError(error: Error, c: Context, onInternalError: (error: unknown) => void): Response {
  if (error instanceof InvalidInstanceConfigError) {
    const first = error.issues[0];
    return errorResponse(c, 400, {
      error: {
        code: error.code,
        message: error.message,
        ...(first === undefined ? {} : { path: first.path }),
        issues: error.issues,
      },
    });
  }
  if (error instanceof InstanceNotFoundError) return errorResponse(c, 404, notFoundBody);
  if (error instanceof InstanceConflictError) {
    return errorResponse(c, 409, { error: { code: error.code, message: error.message } });
  }
  if (error instanceof AddressInUseError) {
    return errorResponse(c, 409, {
      error: { code: error.code, message: error.message, path: '$.ips', holder: error.holder },
    });
  }
  if (error instanceof TransientError) {
    c.header('Retry-After', String(retryAfterSeconds));
    return errorResponse(c, 503, {
      error: { code: 'unavailable', message: 'temporarily unavailable, retry later' },
    });
  }
  if (error instanceof HTTPException && error.status < 500) {
    return errorResponse(c, error.status as ContentfulStatusCode, {
      error: { code: 'bad-request', message: error.message || 'bad request' },
    });
  }
  onInternalError(error);
  return errorResponse(c, 500, { error: { code: 'internal', message: 'internal error' } });
}

/** The instance's own fetch of its config (Ignition at first boot, or coreos-cloudinit). */
function configFetchHandler(
  kind: ConfigKind,
  serviceDeps: InstanceServiceDeps,
  merge: ReturnType<typeof createConfigMerger>,
) {
  return async (c: Context) => {
    const result = await fetchInstanceConfig(
      {
        id: c.req.param('id') ?? '',
        kind,
        token: bearerToken(c.req.header('Authorization')) ?? c.req.query('token'),
        sourceIp: peerAddress(c),
        userAgent: c.req.header('User-Agent') ?? '',
        consume: c.req.method !== 'HEAD',
      },
      serviceDeps,
    );
    if (result.status === 'pending') {
      c.header('Retry-After', String(retryAfterSeconds));
      return errorResponse(c, 503, {
        error: { code: 'not-ready', message: 'this instance has no config yet, retry later' },
      });
    }
    if (result.status !== 'ok') return errorResponse(c, 404, notFoundBody);
    const served = merge(result.record, result.body);
    return c.body(served.body as Uint8Array<ArrayBuffer>, 200, {
      'Content-Type': result.contentType,
      ETag: served.etag,
      'Cache-Control': 'no-store',
    });
  };
}

function adminGuard(adminAuth: AdminAuth): MiddlewareHandler {
  return async (c, next) => {
    if (!adminAllowed(adminAuth, c.req.header('Authorization'), c.env)) {
      if (adminAuth.kind === 'iam') {
        return errorResponse(c, 403, {
          error: {
            code: 'forbidden',
            message:
              'admin routes need a caller checked by the API Gateway IAM authorizer; none reached the API',
          },
        });
      }
      c.header('WWW-Authenticate', 'Bearer realm="cldist admin"');
      return errorResponse(c, 401, { error: { code: 'unauthorized', message: 'admin token required' } });
    }
    await next();
  };
}

const putBodyLimit = bodyLimit({
  maxSize: maxInstanceBodyBytes,
  onError: (c) =>
    errorResponse(c, 413, {
      error: { code: 'too-large', message: `request body is larger than ${maxInstanceBodyBytes} bytes` },
    }),
});

/** The PUT's query flags and JSON body, or the 400 that says which of them is wrong. */
async function readPutRequest(
  c: Context,
): Promise<Response | { body: unknown; text: string; strict: boolean; newToken: boolean }> {
  const strict = c.req.query('strict');
  if (strict !== undefined && strict !== 'true' && strict !== 'false') {
    return errorResponse(c, 400, {
      error: {
        code: 'invalid-query',
        message: `strict must be "true" (refuse unknown Ignition keys) or "false", not ${JSON.stringify(strict)}`,
        path: '?strict',
      },
    });
  }
  const text = await c.req.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (cause) {
    return errorResponse(c, 400, {
      error: {
        code: 'invalid-json',
        message: `request body is not JSON: ${(cause as Error).message}; ${expectedBodyForms}`,
        path: '$',
      },
    });
  }
  const newToken = c.req.query('newToken');
  if (newToken !== undefined && newToken !== 'true' && newToken !== 'false') {
    return errorResponse(c, 400, {
      error: { code: 'invalid-query', message: 'newToken must be "true" or "false"', path: '?newToken' },
    });
  }
  return { body, text, strict: strict === 'true', newToken: newToken === 'true' };
}

function putInstanceHandler(
  serviceDeps: InstanceServiceDeps,
  config: CldistConfig,
  baseUrl: (c: Context) => string,
) {
  return async (c: Context) => {
    const id = c.req.param('id') ?? '';
    const request = await readPutRequest(c);
    if (request instanceof Response) return request;
    const result = await putInstanceConfig({ id, ...request }, serviceDeps, config);
    c.header('Cache-Control', 'no-store');
    return c.json(
      {
        ...(result.token === undefined ? { tokenKept: true } : { token: result.token }),
        ...configUrls(baseUrl(c), result.record, result.token),
        etag: result.record.etag,
        ...(result.record.specVersion === undefined ? {} : { specVersion: result.record.specVersion }),
        warnings: result.warnings,
      },
      result.created ? 201 : 200,
    );
  };
}

/**
 * The instance config API as one Hono app, served unchanged by the API Lambda (API Gateway HTTP API,
 * payload v2) and by @hono/node-server on one machine. It starts nothing: the caller serves it, or mounts
 * it in a bigger app (`parent.route('/', app)`).
 */
export function createApiApp(deps: ApiDeps, config: CldistConfig): Hono {
  const serviceDeps: InstanceServiceDeps = {
    ...deps,
    bodyCache: deps.bodyCache ?? createBodyCache(config.instances.cacheBytes.bodies),
  };
  const onInternalError =
    deps.onInternalError ??
    ((error: unknown) => {
      // One JSON line, absolute paths redacted: CloudWatch (or a terminal) gets no stack trace.
      const line = { level: 'error', event: 'api.internal_error', cause: redactPaths(describeError(error)) };
      process.stderr.write(`${JSON.stringify(line)}\n`);
    });
  const merge = createConfigMerger(config.platform.baseIgnition, config.instances.cacheBytes.merged);
  const app = new Hono();

  app.onError((error, c) => handleApiError(error, c, onInternalError));
  app.notFound((c) => errorResponse(c, 404, notFoundBody));

  const baseUrl = (c: Context) => (config.api.publicBaseUrl ?? new URL(c.req.url).origin).replace(/\/+$/, '');

  app.get(honoPath(apiPaths.instanceIgnition), configFetchHandler('ignition', serviceDeps, merge));
  app.get(honoPath(apiPaths.instanceCloudConfig), configFetchHandler('cloud-config', serviceDeps, merge));
  mountProxiedMetadata(app, {
    secrets: deps.proxySecrets,
    deps: serviceDeps,
    config,
    merge,
    retryAfterSeconds,
    onInternalError,
  });

  const requireAdmin = adminGuard(deps.adminAuth);
  const adminPath = honoPath(apiPaths.instance);
  app.put(adminPath, requireAdmin, putBodyLimit, putInstanceHandler(serviceDeps, config, baseUrl));
  app.get(adminPath, requireAdmin, async (c) => {
    c.header('Cache-Control', 'no-store');
    return c.json(await describeInstance(c.req.param('id') ?? '', serviceDeps));
  });
  app.delete(adminPath, requireAdmin, async (c) => {
    await deleteInstance(c.req.param('id') ?? '', serviceDeps);
    return c.body(null, 204);
  });
  app.route(
    '/',
    createInstanceAdminRoutes({ deps: serviceDeps, config, requireAdmin, baseUrl, onInternalError }),
  );
  if (deps.releases !== undefined) app.route('/', createReleaseRoutes(deps.releases, config, requireAdmin));
  if (deps.boot !== undefined) {
    app.route(
      '/',
      createBootRoutes({
        boot: deps.boot,
        deps: serviceDeps,
        config,
        requireAdmin,
        baseUrl,
        merge,
        retryAfterSeconds,
        onInternalError,
      }),
    );
  }
  if (deps.fleet !== undefined) app.route('/', createFleetRoutes(deps.fleet, config, requireAdmin));
  if (deps.updates !== undefined) app.route('/', createUpdateRoutes(deps.updates, requireAdmin));
  return app;
}
