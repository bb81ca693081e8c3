import type { Server } from 'node:http';
import { createAdaptorServer } from '@hono/node-server';
import { Hono } from 'hono';
import { createApiApp } from '../../shared/api/app.ts';
import type { BootApiDeps } from '../../shared/boot/routes.ts';
import type { CldistConfig } from '../../shared/config.ts';
import { describeError } from '../../shared/errors.ts';
import { redactPaths } from '../../shared/log-safety.ts';
import type { MirrorRuntime } from '../../shared/mirror/runtime.ts';
import type { UpdatePayloadLookup } from '../../shared/update/payload-record.ts';
import { createUpdateService } from '../../shared/update/wiring.ts';
import { startBootListener } from '../boot-listener.ts';
import { startMetadataListener } from '../metadata-listener.ts';
import { createMirrorApp } from '../mirror-http.ts';
import type { StatusModel } from '../status/model.ts';
import { createStatusApp } from '../status/routes.ts';
import type { LocalFleet } from './fleet.ts';
import type { LocalInstances } from './instances.ts';
import { closeServer, type Lifecycle, listen } from './lifecycle.ts';
import type { ServeContext } from './types.ts';

export interface BoundServer {
  /** `http://host:port`. */
  url: string;
  port: number;
  /** Routes requests to `app` from now on; until then the server answers 503. */
  serve(app: Hono): void;
}

/**
 * Binds early, so the port (0 picks one) is known to the API's public URL, and answers 503 until the app
 * is ready.
 */
export async function bindServer(host: string, port: number, lifecycle: Lifecycle): Promise<BoundServer> {
  let app: Hono | undefined;
  const server = createAdaptorServer({
    fetch: (request, env) =>
      app === undefined ? new Response('starting\n', { status: 503 }) : app.fetch(request, env),
  }) as Server;
  const bound = await listen(server, host, port);
  lifecycle.defer(() => closeServer(server));
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}`,
    port: bound,
    serve: (ready) => {
      app = ready;
    },
  };
}

export interface AppParts {
  server: BoundServer;
  adminToken: string;
  runtime: MirrorRuntime;
  instances: LocalInstances;
  fleet: LocalFleet;
  status: () => Promise<StatusModel>;
  /** Bare-metal boot: profiles and selectors in the ledger, recent boot requests in memory. */
  boot: BootApiDeps;
  /** Verified update payloads; the runtime's ledger unless a caller stands in its own. */
  updatePayloads?: UpdatePayloadLookup;
}

/** One server for the status page, the mirror at /mirror and the instance API, as the Lambda serves it. */
export function createServeApp(context: ServeContext, parts: AppParts): Hono {
  const { config, logger, options } = context;
  const { server, instances } = parts;
  const store = parts.runtime.store ?? parts.runtime.deps.store;
  // One JSON line per unexpected error, with absolute paths redacted, and never a stack trace on stderr.
  const internalError = (event: string) => (error: unknown) =>
    logger.error(event, { cause: redactPaths(describeError(error)) });
  const apiConfig: CldistConfig = {
    ...config,
    api: {
      ...config.api,
      host: options.host,
      port: server.port,
      publicBaseUrl: config.api.publicBaseUrl ?? server.url,
    },
  };
  const ledger = parts.runtime.deps.ledger;
  // The mirror app below serves the store under /mirror, update payloads included.
  const updates = createUpdateService(
    {
      groups: ledger,
      current: ledger,
      clock: () => new Date(),
      payloads: parts.updatePayloads ?? ledger,
      recorder: parts.fleet.recorder,
      onRecordError: internalError('update.record_failed'),
    },
    {
      mirrorBaseUrl: `${(apiConfig.api.publicBaseUrl ?? server.url).replace(/\/+$/, '')}/mirror`,
      sources: config.sources,
    },
  );
  const root = new Hono();
  root.route(
    '/',
    createStatusApp({
      adminToken: parts.adminToken,
      getStatus: parts.status,
      refreshSeconds: options.refreshSeconds ?? 5,
      publicBaseUrl: config.api.publicBaseUrl,
    }),
  );
  root.onError((error, c) => {
    internalError('http.internal_error')(error);
    return c.text('internal error\n', 500);
  });
  root.route('/', createMirrorApp(store, { onError: internalError('mirror.internal_error') }));
  root.route(
    '/',
    createApiApp(
      {
        ...instances.serviceDeps,
        adminAuth: { kind: 'bearer', token: parts.adminToken },
        releases: { ledger, jobs: parts.runtime.deps.jobs },
        updates,
        countRefused: instances.upkeep.countRefused,
        onInternalError: internalError('api.internal_error'),
        ...(instances.proxySecrets === undefined ? {} : { proxySecrets: instances.proxySecrets }),
        boot: parts.boot,
        fleet: parts.fleet.api,
      },
      apiConfig,
    ),
  );
  return root;
}

/**
 * Routes the bound server to the app and starts the listeners asked for: `--metadata-listen` (the
 * metadata routes alone) and `--boot-listen` (the network boot routes and the mirror alone); resolves
 * with their URLs.
 */
export async function serveHttp(
  context: ServeContext,
  parts: AppParts,
): Promise<{ metadataUrl?: string; bootUrl?: string }> {
  parts.server.serve(createServeApp(context, parts));
  const { options, config, logger, lifecycle } = context;
  const deps = parts.instances.serviceDeps;
  const urls: { metadataUrl?: string; bootUrl?: string } = {};
  if (options.metadataListen !== undefined) {
    const metadata = await startMetadataListener({ ...options.metadataListen, deps, config, logger });
    lifecycle.defer(() => metadata.close());
    urls.metadataUrl = metadata.url;
  }
  if (options.bootListen !== undefined) {
    const mirror = parts.runtime.store ?? parts.runtime.deps.store;
    const boot = await startBootListener({
      ...options.bootListen,
      deps,
      boot: parts.boot,
      mirror,
      config,
      logger,
    });
    lifecycle.defer(() => boot.close());
    urls.bootUrl = boot.url;
  }
  return urls;
}
