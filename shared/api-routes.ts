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
  /** The fleet view: counts and a page of machines that check in over Omaha. */
  fleet: '/v1/fleet',
  /** Everything a trusted metadata proxy forwards, and its address lookup, lives under this prefix. */
  metadataPrefix: '/v1/metadata',
  /** The gateway's greedy route over the metadata prefix. */
  metadata: '/v1/metadata/{proxy+}',
  /** What DHCP hands to iPXE: a script that chains to the machine's own script. */
  bootChain: '/boot.ipxe',
  bootIpxe: '/v1/boot/ipxe',
  bootGrub: '/v1/boot/grub',
  /** The Ignition URL a boot script names, with a boot token of the instance. */
  bootInstanceIgnition: '/v1/boot/instances/{id}/ignition',
  bootPreview: '/v1/boot/preview',
  bootRecent: '/v1/boot/recent',
  bootProfiles: '/v1/boot/profiles',
  bootProfile: '/v1/boot/profiles/{name}',
  /** An instance's boot selectors and profile. */
  instanceBoot: '/v1/instances/{id}/boot',
  /**
   * The Omaha endpoint instances name in `SERVER=`. Nebraska's path ends in a slash (`/v1/update/`);
   * API Gateway routes a path with and without its trailing slash alike, and the app serves both.
   */
  update: '/v1/update',
  updateGroups: '/v1/update-groups',
  updateGroup: '/v1/update-groups/{name}',
  updateGroupPause: '/v1/update-groups/{name}/pause',
  updateGroupResume: '/v1/update-groups/{name}/resume',
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
  /**
   * Called by network-booting firmware (iPXE, GRUB), which can neither sign nor hold a secret: no IAM, and
   * a throttle of their own. The Ignition route checks the instance's boot token itself.
   */
  boot: [
    { method: 'GET', path: apiPaths.bootChain },
    { method: 'GET', path: apiPaths.bootIpxe },
    { method: 'GET', path: apiPaths.bootGrub },
    { method: 'GET', path: apiPaths.bootInstanceIgnition },
  ],
  /**
   * Called by update_engine on every instance about every 45 minutes: no IAM and no token (the Omaha
   * client sends neither); it reveals only which verified releases a group is offered, and is throttled.
   */
  update: [{ method: 'POST', path: apiPaths.update }],
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
    { method: 'GET', path: apiPaths.bootPreview },
    { method: 'GET', path: apiPaths.bootRecent },
    { method: 'GET', path: apiPaths.bootProfiles },
    { method: 'PUT', path: apiPaths.bootProfile },
    { method: 'GET', path: apiPaths.bootProfile },
    { method: 'DELETE', path: apiPaths.bootProfile },
    { method: 'PUT', path: apiPaths.instanceBoot },
    { method: 'GET', path: apiPaths.instanceBoot },
    { method: 'DELETE', path: apiPaths.instanceBoot },
    { method: 'GET', path: apiPaths.fleet },
    { method: 'GET', path: apiPaths.updateGroups },
    { method: 'GET', path: apiPaths.updateGroup },
    { method: 'PUT', path: apiPaths.updateGroup },
    { method: 'DELETE', path: apiPaths.updateGroup },
    { method: 'POST', path: apiPaths.updateGroupPause },
    { method: 'POST', path: apiPaths.updateGroupResume },
  ],
} as const satisfies Record<string, readonly ApiRoute[]>;

/** API Gateway's route key, e.g. `GET /v1/instances/{id}`. */
export function routeKey(route: ApiRoute): string {
  return `${route.method} ${route.path}`;
}

export const instanceRouteKeys: readonly string[] = apiRoutes.instance.map(routeKey);
export const metadataRouteKeys: readonly string[] = apiRoutes.metadata.map(routeKey);
export const bootRouteKeys: readonly string[] = apiRoutes.boot.map(routeKey);
export const adminRouteKeys: readonly string[] = apiRoutes.admin.map(routeKey);
export const updateRouteKeys: readonly string[] = apiRoutes.update.map(routeKey);

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
