import type { Server } from 'node:http';
import { createAdaptorServer } from '@hono/node-server';
import { Hono } from 'hono';
import { createApiApp } from '../../functions/api/app.ts';
import type { CldistConfig } from '../../shared/config.ts';
import { describeError } from '../../shared/errors.ts';
import { redactPaths } from '../../shared/log-safety.ts';
import type { MirrorRuntime } from '../../shared/mirror/runtime.ts';
import type { ObjectStore } from '../../shared/store/types.ts';
import { createMirrorApp } from '../mirror-http.ts';
import type { Logger } from '../runtime/log.ts';
import type { StatusModel } from '../status/model.ts';
import { createStatusApp } from '../status/routes.ts';
import type { LocalInstances } from './instances.ts';
import { closeServer, type Lifecycle, listen } from './lifecycle.ts';

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
  config: CldistConfig;
  host: string;
  server: Pick<BoundServer, 'url' | 'port'>;
  adminToken: string;
  store: ObjectStore;
  runtime: MirrorRuntime;
  instances: LocalInstances;
  status: () => Promise<StatusModel>;
  refreshSeconds: number;
  logger: Logger;
}

/** One server for the status page, the mirror at /mirror and the instance API, as the Lambda serves it. */
export function createServeApp(parts: AppParts): Hono {
  const { config, server, logger, instances } = parts;
  // One JSON line per unexpected error, with absolute paths redacted, and never a stack trace on stderr.
  const internalError = (event: string) => (error: unknown) =>
    logger.error(event, { cause: redactPaths(describeError(error)) });
  const apiConfig: CldistConfig = {
    ...config,
    api: {
      ...config.api,
      host: parts.host,
      port: server.port,
      publicBaseUrl: config.api.publicBaseUrl ?? server.url,
    },
  };
  const root = new Hono();
  root.route(
    '/',
    createStatusApp({
      adminToken: parts.adminToken,
      getStatus: parts.status,
      refreshSeconds: parts.refreshSeconds,
      publicBaseUrl: config.api.publicBaseUrl,
    }),
  );
  root.onError((error, c) => {
    internalError('http.internal_error')(error);
    return c.text('internal error\n', 500);
  });
  root.route('/', createMirrorApp(parts.store, { onError: internalError('mirror.internal_error') }));
  root.route(
    '/',
    createApiApp(
      {
        ...instances.serviceDeps,
        adminAuth: { kind: 'bearer', token: parts.adminToken },
        releases: { ledger: parts.runtime.deps.ledger, jobs: parts.runtime.deps.jobs },
        countRefused: instances.upkeep.countRefused,
        onInternalError: internalError('api.internal_error'),
        ...(instances.proxySecrets === undefined ? {} : { proxySecrets: instances.proxySecrets }),
      },
      apiConfig,
    ),
  );
  return root;
}
