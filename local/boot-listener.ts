import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdaptorServer } from '@hono/node-server';
import { Hono } from 'hono';
import { retryAfterSeconds } from '../shared/api/app.ts';
import { type BootApiDeps, createBootMachineRoutes } from '../shared/boot/routes.ts';
import type { CldistConfig } from '../shared/config.ts';
import { ConfigError, describeError } from '../shared/errors.ts';
import type { InstanceServiceDeps } from '../shared/instances/service.ts';
import { createConfigMerger } from '../shared/metadata/merge.ts';
import type { ObjectStore } from '../shared/store/types.ts';
import { createMirrorApp } from './mirror-http.ts';
import type { Logger } from './runtime/log.ts';

export interface BootListenerOptions {
  host: string;
  port: number;
  deps: InstanceServiceDeps;
  boot: BootApiDeps;
  /** The mirror store: the listener serves kernel, initramfs and flatcar-install's files itself. */
  mirror: ObjectStore;
  config: CldistConfig;
  logger: Logger;
}

export interface BootListener {
  url: string;
  port: number;
  close(): Promise<void>;
}

function listenProblem(error: NodeJS.ErrnoException, where: string): Error {
  const reasons: Record<string, string> = {
    EADDRINUSE: `${where} is already in use`,
    EADDRNOTAVAIL: `${where} is not an address of this machine; use the address of the provisioning network's interface`,
    EACCES: `${where}: ports below 1024 need root or CAP_NET_BIND_SERVICE`,
  };
  const reason = error.code === undefined ? undefined : reasons[error.code];
  return reason === undefined ? error : new ConfigError(`--boot-listen ${reason}`, { cause: error });
}

/**
 * The boot listener: what a provisioning network needs and nothing else. The chain and machine scripts,
 * the boot token's config route and the read-only mirror; no admin, status, token or metadata route. The
 * URLs it writes into scripts are its own (the address the machine asked), unless `boot.mirrorBaseUrl`
 * names another mirror.
 */
export async function startBootListener(options: BootListenerOptions): Promise<BootListener> {
  const { config, logger } = options;
  const onError = (error: unknown) => logger.error('boot.internal_error', { cause: describeError(error) });
  const app = new Hono();
  app.onError((error, c) => {
    onError(error);
    return c.text('internal error\n', 500);
  });
  app.route('/', createMirrorApp(options.mirror, { onError }));
  app.route(
    '/',
    createBootMachineRoutes({
      boot: options.boot,
      deps: options.deps,
      config,
      baseUrl: (c) => new URL(c.req.url).origin,
      merge: createConfigMerger(config.platform.baseIgnition),
      retryAfterSeconds,
      onInternalError: onError,
    }),
  );
  app.notFound((c) => c.text('not found\n', 404));
  const server = createAdaptorServer({ fetch: app.fetch }) as Server;
  const where = `${options.host}:${options.port}`;
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => reject(listenProblem(error, where)));
    server.listen(options.port, options.host, () => resolve((server.address() as AddressInfo).port));
  });
  const url = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`;
  logger.info('boot.listening', { url, chain: `${url}/boot.ipxe` });
  return {
    url,
    port,
    close: () =>
      new Promise<void>((done) => {
        server.close(() => done());
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), 2000).unref();
      }),
  };
}
