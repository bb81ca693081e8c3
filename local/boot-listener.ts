import { Hono } from 'hono';
import { retryAfterSeconds } from '../shared/api/app.ts';
import { type BootApiDeps, createBootMachineRoutes } from '../shared/boot/routes.ts';
import type { CldistConfig } from '../shared/config.ts';
import { describeError } from '../shared/errors.ts';
import type { InstanceServiceDeps } from '../shared/instances/service.ts';
import { createConfigMerger } from '../shared/metadata/merge.ts';
import type { ObjectStore } from '../shared/store/types.ts';
import { type Listener, startListener } from './http/listener.ts';
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

export type BootListener = Listener;

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
      merge: createConfigMerger(config.platform.baseIgnition, config.instances.cacheBytes.merged),
      retryAfterSeconds,
      onInternalError: onError,
    }),
  );
  app.notFound((c) => c.text('not found\n', 404));
  const listener = await startListener({
    fetch: app.fetch,
    host: options.host,
    port: options.port,
    option: '--boot-listen',
    notLocalHint: "use the address of the provisioning network's interface",
  });
  logger.info('boot.listening', { url: listener.url, chain: `${listener.url}/boot.ipxe` });
  return listener;
}
