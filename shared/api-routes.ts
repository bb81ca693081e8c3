/**
 * The API's routes, owned here and imported both by the HTTP app that serves them and by the stack that
 * puts API Gateway routes, authorizers and per-route throttles in front of them. A path the gateway does
 * not route never reaches the function, so both sides read one list. Paths are written in API Gateway's
 * template form (`{id}`, greedy `{proxy+}`); `honoPath` gives the same path as Hono writes it.
 *
 * This module imports nothing, so the Lambda bundle pulls in no CDK code through it.
 */

export const apiPaths = {
  /** The collection: list (GET), bulk register (POST, JSON lines), bulk delete by prefix (DELETE). */
  instances: '/v1/instances',
  instance: '/v1/instances/{id}',
  instanceReserve: '/v1/instances/{id}/reserve',
  instanceRevoke: '/v1/instances/{id}/revoke',
  instanceIgnition: '/v1/instances/{id}/ignition',
  instanceCloudConfig: '/v1/instances/{id}/cloud-config',
  releases: '/v1/releases',
  releaseRetry: '/v1/releases/{source}/{channel}/{board}/{version}/retry',
  /** Everything a trusted metadata proxy forwards, and its address lookup, lives under this prefix. */
  metadataPrefix: '/v1/metadata',
  /** The gateway's greedy route over the metadata prefix. */
  metadata: '/v1/metadata/{proxy+}',
} as const;

export type ApiMethod = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE';

export interface ApiRoute {
  readonly method: ApiMethod;
  readonly path: string;
}

/** How a caller proves who it is on a route, which decides the gateway authorizer and throttle. */
export const apiRoutes = {
  /** Fetched by an instance at first boot: no IAM (Ignition cannot sign requests), its own token. */
  instance: [
    { method: 'GET', path: apiPaths.instanceIgnition },
    { method: 'GET', path: apiPaths.instanceCloudConfig },
  ],
  /**
   * Called by a trusted metadata proxy: no IAM, since the proxy's HMAC over the instance id or address is
   * the authentication, checked by the function in constant time.
   */
  metadata: [
    { method: 'GET', path: apiPaths.metadata },
    { method: 'HEAD', path: apiPaths.metadata },
    { method: 'PUT', path: apiPaths.metadata },
  ],
  /** Called by an operator: SigV4-signed and IAM-authorised on AWS, a bearer token on one machine. */
  admin: [
    { method: 'PUT', path: apiPaths.instance },
    { method: 'GET', path: apiPaths.instance },
    { method: 'DELETE', path: apiPaths.instance },
    { method: 'GET', path: apiPaths.instances },
    { method: 'POST', path: apiPaths.instances },
    { method: 'DELETE', path: apiPaths.instances },
    { method: 'POST', path: apiPaths.instanceReserve },
    { method: 'POST', path: apiPaths.instanceRevoke },
    { method: 'GET', path: apiPaths.releases },
    { method: 'POST', path: apiPaths.releaseRetry },
  ],
} as const satisfies Record<string, readonly ApiRoute[]>;

/** API Gateway's route key, e.g. `GET /v1/instances/{id}`. */
export function routeKey(route: ApiRoute): string {
  return `${route.method} ${route.path}`;
}

export const instanceRouteKeys: readonly string[] = apiRoutes.instance.map(routeKey);
export const metadataRouteKeys: readonly string[] = apiRoutes.metadata.map(routeKey);
export const adminRouteKeys: readonly string[] = apiRoutes.admin.map(routeKey);

type HonoSegment<S extends string> = S extends `{${string}+}`
  ? '*'
  : S extends `{${infer Name}}`
    ? `:${Name}`
    : S;

/** `honoPath`'s result as a type, so Hono still types the route's parameters. */
export type HonoPath<P extends string> = P extends `${infer Head}/${infer Rest}`
  ? `${HonoSegment<Head>}/${HonoPath<Rest>}`
  : HonoSegment<P>;

/**
 * The path as Hono registers it: `{id}` becomes `:id`, and a greedy `{proxy+}` becomes `*`. A path with
 * a parameter that is not a whole segment is refused, since neither router could match it the same way.
 */
export function honoPath<P extends string>(path: P): HonoPath<P> {
  const segments = path.split('/').map((segment) => {
    const parameter = /^\{([A-Za-z][A-Za-z0-9]*)(\+?)\}$/.exec(segment);
    if (parameter === null) {
      if (/[{}]/.test(segment)) {
        throw new Error(`API path ${path}: segment "${segment}" is not a plain word or one {parameter}`);
      }
      return segment;
    }
    return parameter[2] === '+' ? '*' : `:${parameter[1]}`;
  });
  // The type mirrors the conversion above; test/unit/api-routes.test.ts holds the two together.
  return segments.join('/') as HonoPath<P>;
}
