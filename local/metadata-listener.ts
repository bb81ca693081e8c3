import type { CldistConfig } from '../shared/config.ts';
import { ConfigError, describeError } from '../shared/errors.ts';
import type { InstanceServiceDeps } from '../shared/instances/service.ts';
import { sourceAddressIdentity } from '../shared/metadata/identity.ts';
import { createConfigMerger } from '../shared/metadata/merge.ts';
import { createMetadataApp } from '../shared/metadata/routes.ts';
import { type Listener, startListener } from './http/listener.ts';
import type { Logger } from './runtime/log.ts';

export interface MetadataListenerOptions {
  host: string;
  port: number;
  deps: InstanceServiceDeps;
  config: CldistConfig;
  logger: Logger;
}

export type MetadataListener = Listener;

/** `--metadata-listen HOST:PORT` into its parts; IPv6 hosts in brackets (`[fd00:ec2::254]:80`). */
export function parseListenAddress(
  value: string,
  option = '--metadata-listen',
  example = '169.254.169.254:80',
): { host: string; port: number } {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  const port = Number(match?.[3]);
  const host = match?.[1] ?? match?.[2];
  if (host === undefined || !Number.isInteger(port) || port > 65_535) {
    throw new ConfigError(`${option} ${value}: expected HOST:PORT, e.g. ${example}`);
  }
  return { host, port };
}

/**
 * The metadata listener: a server with only the metadata routes, identifying instances by their source
 * address. No admin, status or mirror route is on it, and no header is trusted, so an instance that can
 * reach it learns its own data and nothing else.
 */
export async function startMetadataListener(options: MetadataListenerOptions): Promise<MetadataListener> {
  const app = createMetadataApp({
    identity: sourceAddressIdentity(options.deps.instances),
    deps: options.deps,
    config: options.config,
    merge: createConfigMerger(
      options.config.platform.baseIgnition,
      options.config.instances.cacheBytes.merged,
    ),
    onInternalError: (error) =>
      options.logger.error('metadata.internal_error', { cause: describeError(error) }),
  });
  const listener = await startListener({
    fetch: app.fetch,
    host: options.host,
    port: options.port,
    option: '--metadata-listen',
    notLocalHint: 'add it to an interface first (ip addr add 169.254.169.254/32 dev IFACE)',
  });
  options.logger.info('metadata.listening', { url: listener.url });
  return listener;
}
