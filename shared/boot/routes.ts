import { type Context, Hono, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import * as z from 'zod';
import { apiPaths, honoPath } from '../api-routes.ts';
import type { CldistConfig } from '../config.ts';
import { PermanentError, TransientError } from '../errors.ts';
import type { InstanceServiceDeps } from '../instances/service.ts';
import { type InstanceRecord, instanceIdPattern } from '../instances/types.ts';
import { peerAddress } from '../metadata/identity.ts';
import type { ServedConfig } from '../metadata/merge.ts';
import { fetchBootConfig } from './config-fetch.ts';
import {
  assertProfileName,
  checkProfileRelease,
  InvalidProfileError,
  profileBodySchema,
  type ReleaseFacts,
} from './profiles.ts';
import { createRecentBoots, type RecentBoots, recentEntry } from './recent.ts';
import { type BootLoader, ipxeChainScript } from './scripts.ts';
import { bootSelectorShape, hasAnySelector, requestFacts } from './selectors.ts';
import { type BootDecision, type BootUrls, decideBoot, renderBoot, unavailableDecision } from './service.ts';
import { type BootStore, SelectorTieError } from './store.ts';

/** What the boot routes need besides the instance service: the boot store and the mirror's facts. */
export interface BootApiDeps {
  store: BootStore;
  releases: ReleaseFacts;
  recent?: RecentBoots;
}

export interface BootRouteOptions {
  boot: BootApiDeps;
  deps: InstanceServiceDeps;
  config: CldistConfig;
  requireAdmin: MiddlewareHandler;
  baseUrl: (c: Context) => string;
  merge: (record: InstanceRecord, body: Uint8Array) => ServedConfig;
  retryAfterSeconds: number;
  onInternalError: (error: unknown) => void;
}

const maxBodyBytes = 64 * 1024;

const selectionBodySchema = z.strictObject({
  ...bootSelectorShape,
  profile: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'a profile name (see "cldist profiles list")'),
  oneTimeToken: z.boolean().optional(),
});

function problem(c: Context, status: ContentfulStatusCode, code: string, message: string, extra = {}) {
  c.header('Cache-Control', 'no-store');
  return c.json({ error: { code, message, ...extra } }, status);
}

function zodProblem(c: Context, error: z.ZodError) {
  const issues = error.issues.map((issue) => ({
    path: `$${issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('')}`,
    message: issue.message,
  }));
  const first = issues[0];
  return problem(c, 400, 'invalid-boot-input', issues.map((i) => `${i.path}: ${i.message}`).join('; '), {
    ...(first === undefined ? {} : { path: first.path }),
    issues,
  });
}

async function readJson(
  c: Context,
): Promise<{ ok: true; value: unknown } | { ok: false; response: Response }> {
  const text = await c.req.text();
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (cause) {
    return {
      ok: false,
      response: problem(c, 400, 'invalid-json', `request body is not JSON: ${(cause as Error).message}`, {
        path: '$',
      }),
    };
  }
}

function script(c: Context, text: string): Response {
  c.header('Cache-Control', 'no-store');
  return c.body(text, 200, { 'Content-Type': 'text/plain; charset=utf-8' });
}

/** What the machine routes need; the admin routes also need `requireAdmin`. */
export type BootMachineRouteOptions = Omit<BootRouteOptions, 'requireAdmin'>;

function urlsFor(config: CldistConfig, baseUrl: (c: Context) => string) {
  return (c: Context): BootUrls => {
    const apiBaseUrl = baseUrl(c);
    return {
      apiBaseUrl,
      mirrorBaseUrl: (config.boot.mirrorBaseUrl ?? `${apiBaseUrl}/mirror`).replace(/\/+$/, ''),
    };
  };
}

/** What `decideBoot` reads, from the boot parts and the instance service's. */
function decisionDeps(boot: BootApiDeps, deps: InstanceServiceDeps, sources: CldistConfig['sources']) {
  return {
    store: boot.store,
    releases: boot.releases,
    sources,
    instances: deps.instances,
    clock: deps.clock,
  };
}

/**
 * The unauthenticated routes network-booting machines call: the chain script, each loader's script and
 * the boot token's config. Served on the API app, and alone on `cldist serve --boot-listen`.
 */
export function createBootMachineRoutes(options: BootMachineRouteOptions): Hono {
  const { boot, deps, config, baseUrl } = options;
  const recent = boot.recent ?? createRecentBoots();
  const app = new Hono();
  const urls = urlsFor(config, baseUrl);
  const bootDeps = decisionDeps(boot, deps, config.sources);

  app.get(apiPaths.bootChain, (c) => script(c, ipxeChainScript(baseUrl(c))));

  const machineScript = (loader: BootLoader) => async (c: Context) => {
    const facts = requestFacts(c.req.query());
    const where = urls(c);
    let decision: BootDecision;
    try {
      decision = await decideBoot(facts, bootDeps, config, { urls: where, mint: true });
    } catch (error) {
      if (!(error instanceof TransientError)) options.onInternalError(error);
      decision = unavailableDecision();
    }
    const outcome = decision.kind === 'wait' ? decision.outcome : decision.kind;
    recent.record(
      recentEntry(deps.clock(), loader, facts, {
        outcome,
        ...(decision.instance === undefined ? {} : { instance: decision.instance }),
        ...(decision.profile === undefined ? {} : { profile: decision.profile }),
      }),
    );
    return script(c, renderBoot(decision, loader, facts, where, config.boot.retrySeconds));
  };
  app.get(apiPaths.bootIpxe, machineScript('ipxe'));
  app.get(apiPaths.bootGrub, machineScript('grub'));

  app.get(honoPath(apiPaths.bootInstanceIgnition), async (c) => {
    const result = await fetchBootConfig(
      {
        id: c.req.param('id') ?? '',
        token: c.req.query('token'),
        stage: c.req.query('stage'),
        sourceIp: peerAddress(c),
        userAgent: c.req.header('User-Agent') ?? '',
        consume: c.req.method !== 'HEAD',
      },
      { ...deps, store: boot.store, releases: boot.releases, sources: config.sources, merge: options.merge },
      urls(c),
    );
    if (result.status === 'pending') {
      c.header('Retry-After', String(options.retryAfterSeconds));
      return problem(c, 503, 'not-ready', 'this instance has no config yet, retry later');
    }
    if (result.status !== 'ok') return problem(c, 404, 'not-found', 'not found');
    return c.body(result.body as Uint8Array<ArrayBuffer>, 200, {
      'Content-Type': result.contentType,
      ETag: result.etag,
      'Cache-Control': 'no-store',
    });
  });
  return app;
}

/**
 * Bare-metal boot on the API app: the machine routes, and the admin routes for profiles, an instance's
 * selectors, a preview of the script a machine would get, and the machines that asked lately.
 */
export function createBootRoutes(options: BootRouteOptions): Hono {
  const { boot, deps, config, requireAdmin, baseUrl } = options;
  const recent = boot.recent ?? createRecentBoots();
  const app = new Hono();
  const small = bodyLimit({
    maxSize: maxBodyBytes,
    onError: (c) => problem(c, 413, 'too-large', `request body is larger than ${maxBodyBytes} bytes`),
  });
  const urls = urlsFor(config, baseUrl);
  const bootDeps = decisionDeps(boot, deps, config.sources);
  app.route('/', createBootMachineRoutes({ ...options, boot: { ...boot, recent } }));

  app.get(apiPaths.bootPreview, requireAdmin, async (c) => {
    const loader = c.req.query('loader') ?? 'ipxe';
    if (loader !== 'ipxe' && loader !== 'grub') {
      return problem(
        c,
        400,
        'invalid-query',
        `loader must be "ipxe" or "grub", not ${JSON.stringify(loader)}`,
        {
          path: '?loader',
        },
      );
    }
    const facts = requestFacts(c.req.query());
    const where = urls(c);
    const decision = await decideBoot(facts, bootDeps, config, { urls: where, mint: false });
    return script(c, renderBoot(decision, loader, facts, where, config.boot.retrySeconds));
  });

  app.get(apiPaths.bootRecent, requireAdmin, (c) => {
    c.header('Cache-Control', 'no-store');
    return c.json({ boots: recent.list() });
  });

  mountProfileRoutes(app, options, small);
  mountSelectionRoutes(app, options, small);
  return app;
}

function mountProfileRoutes(app: Hono, options: BootRouteOptions, small: MiddlewareHandler): void {
  const { boot, deps, config, requireAdmin } = options;
  const profilePath = honoPath(apiPaths.bootProfile);
  app.get(apiPaths.bootProfiles, requireAdmin, async (c) => {
    c.header('Cache-Control', 'no-store');
    return c.json({ profiles: await boot.store.listProfiles() });
  });
  app.put(profilePath, requireAdmin, small, async (c) => {
    const name = c.req.param('name');
    try {
      assertProfileName(name);
    } catch (error) {
      if (error instanceof InvalidProfileError)
        return problem(c, 400, error.code, error.message, { path: error.path });
      throw error;
    }
    const body = await readJson(c);
    if (!body.ok) return body.response;
    const parsed = profileBodySchema.safeParse(body.value);
    if (!parsed.success) return zodProblem(c, parsed.error);
    try {
      await checkProfileRelease(parsed.data, boot.releases, config);
    } catch (error) {
      if (error instanceof InvalidProfileError)
        return problem(c, 400, error.code, error.message, { path: error.path });
      throw error;
    }
    const previous = await boot.store.getProfile(name);
    const now = deps.clock().toISOString();
    const profile = {
      name,
      channel: parsed.data.channel,
      board: parsed.data.board,
      version: parsed.data.version,
      kernelArgs: parsed.data.kernelArgs,
      ...(parsed.data.install === undefined ? {} : { install: parsed.data.install }),
      createdAt: previous?.createdAt ?? now,
      updatedAt: now,
    };
    await boot.store.putProfile(profile);
    c.header('Cache-Control', 'no-store');
    return c.json(profile, previous === undefined ? 201 : 200);
  });
  app.get(profilePath, requireAdmin, async (c) => {
    const profile = await boot.store.getProfile(c.req.param('name'));
    if (profile === undefined)
      return problem(c, 404, 'not-found', `no boot profile "${c.req.param('name')}"`);
    c.header('Cache-Control', 'no-store');
    return c.json(profile);
  });
  app.delete(profilePath, requireAdmin, async (c) => {
    const deleted = await boot.store.deleteProfile(c.req.param('name'));
    if (!deleted) return problem(c, 404, 'not-found', `no boot profile "${c.req.param('name')}"`);
    return c.body(null, 204);
  });
}

function mountSelectionRoutes(app: Hono, options: BootRouteOptions, small: MiddlewareHandler): void {
  const { boot, deps, requireAdmin } = options;
  const path = honoPath(apiPaths.instanceBoot);
  app.put(path, requireAdmin, small, async (c) => {
    const id = c.req.param('id');
    if (!instanceIdPattern.test(id))
      return problem(c, 400, 'invalid-id', 'not an instance id', { path: '$.id' });
    const body = await readJson(c);
    if (!body.ok) return body.response;
    const parsed = selectionBodySchema.safeParse(body.value);
    if (!parsed.success) return zodProblem(c, parsed.error);
    const { profile, oneTimeToken, labels, ...hardware } = parsed.data;
    const selectors = { ...hardware, labels: labels ?? {} };
    if (!hasAnySelector(selectors)) {
      return problem(
        c,
        400,
        'invalid-boot-input',
        'give at least one selector (mac, uuid, serial, hostname or a label); machines nothing matches get boot.defaultProfile',
        { path: '$' },
      );
    }
    if ((await deps.instances.get(id)) === undefined) {
      return problem(
        c,
        404,
        'not-found',
        `no instance "${id}"; put its config first ("cldist instances put")`,
      );
    }
    if ((await boot.store.getProfile(profile)) === undefined) {
      return problem(
        c,
        400,
        'unknown-profile',
        `no boot profile "${profile}"; create it with "cldist profiles put"`,
        {
          path: '$.profile',
        },
      );
    }
    const selection = {
      id,
      selectors,
      profile,
      oneTimeToken: oneTimeToken ?? false,
      updatedAt: deps.clock().toISOString(),
    };
    try {
      await boot.store.putSelection(selection);
    } catch (error) {
      if (error instanceof SelectorTieError) {
        return problem(c, 409, error.code, error.message, { holder: error.holder });
      }
      if (error instanceof PermanentError) return problem(c, 409, error.code, error.message);
      throw error;
    }
    c.header('Cache-Control', 'no-store');
    return c.json(selection);
  });
  app.get(path, requireAdmin, async (c) => {
    const selection = await boot.store.getSelection(c.req.param('id'));
    if (selection === undefined) return problem(c, 404, 'not-found', 'this instance has no boot selectors');
    const { tokens, rev: _rev, ...visible } = selection;
    c.header('Cache-Control', 'no-store');
    return c.json({ ...visible, tokens: tokens.map(({ hash: _hash, ...rest }) => rest) });
  });
  app.delete(path, requireAdmin, async (c) => {
    const deleted = await boot.store.deleteSelection(c.req.param('id'));
    if (!deleted) return problem(c, 404, 'not-found', 'this instance has no boot selectors');
    return c.body(null, 204);
  });
}
