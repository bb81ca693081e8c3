import type { Logger } from '../runtime/log.ts';
import { createApiClient } from './api-client.ts';
import { createInstanceCache } from './instance-cache.ts';
import type { ListenAddress } from './options.ts';
import { openSecretFile } from './secret-file.ts';
import { type RunningProxy, startMetadataProxy } from './server.ts';

/** Everything `cldist metadata-proxy` is told, validated. */
export interface ProxySettings {
  listen: ListenAddress;
  api: URL;
  secretFile: string;
  cacheSeconds: number;
  negativeCacheSeconds: number;
  cacheEntries: number;
  timeoutSeconds: number;
  secretReloadSeconds: number;
  maxResponseBytes: number;
  shutdownGraceSeconds: number;
}

export const proxyDefaults = {
  cacheSeconds: 10,
  negativeCacheSeconds: 2,
  cacheEntries: 10_000,
  timeoutSeconds: 10,
  secretReloadSeconds: 30,
  /** Above the API's own 1 MiB limit on a stored config, with room for the merged platform config. */
  maxResponseBytes: 4 * 1024 * 1024,
  shutdownGraceSeconds: 10,
} as const;

export interface StartedProxy extends RunningProxy {
  /** Re-reads the secret file now (the timer and the file watch also do). */
  reloadSecret(): Promise<boolean>;
}

/** Reads the secret (failing before listening if it is unusable), then serves. */
export async function startProxyFromSettings(settings: ProxySettings, logger: Logger): Promise<StartedProxy> {
  const api = settings.api;
  const secret = await openSecretFile({
    file: settings.secretFile,
    reloadEveryMs: settings.secretReloadSeconds * 1000,
    logger,
  });
  const client = createApiClient({ api, secret: secret.current, timeoutMs: settings.timeoutSeconds * 1000 });
  const cache = createInstanceCache({
    ttlMs: settings.cacheSeconds * 1000,
    negativeTtlMs: settings.negativeCacheSeconds * 1000,
    maxEntries: settings.cacheEntries,
  });
  let running: RunningProxy;
  try {
    running = await startMetadataProxy(
      {
        host: settings.listen.host,
        port: settings.listen.port,
        maxResponseBytes: settings.maxResponseBytes,
        requestTimeoutMs: settings.timeoutSeconds * 1000,
        shutdownGraceMs: settings.shutdownGraceSeconds * 1000,
      },
      { api: client, cache, logger },
    );
  } catch (error) {
    secret.close();
    client.close();
    throw error;
  }
  logger.info('proxy.listening', {
    url: running.url,
    api: api.href,
    secretFile: settings.secretFile,
    cacheSeconds: settings.cacheSeconds,
    negativeCacheSeconds: settings.negativeCacheSeconds,
  });
  return {
    ...running,
    reloadSecret: secret.reload,
    close: async () => {
      logger.info('proxy.stopping', { graceSeconds: settings.shutdownGraceSeconds });
      await running.close();
      secret.close();
      client.close();
      const { hits, misses } = cache.stats();
      logger.info('proxy.stopped', { cacheHits: hits, cacheMisses: misses });
    },
  };
}
