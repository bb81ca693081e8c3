import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdaptorServer } from '@hono/node-server';
import type { CldistConfig } from '../shared/config.ts';
import { ConfigError, describeError } from '../shared/errors.ts';
import type { InstanceServiceDeps } from '../shared/instances/service.ts';
import { sourceAddressIdentity } from '../shared/metadata/identity.ts';
import { createConfigMerger } from '../shared/metadata/merge.ts';
import { createMetadataApp } from '../shared/metadata/routes.ts';
import type { Logger } from './runtime/log.ts';

export interface MetadataListenerOptions {
  host: string;
  port: number;
  deps: InstanceServiceDeps;
  config: CldistConfig;
  logger: Logger;
}

export interface MetadataListener {
  url: string;
  port: number;
  close(): Promise<void>;
}

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

function listenProblem(error: NodeJS.ErrnoException, where: string): Error {
  const reasons: Record<string, string> = {
    EADDRINUSE: `${where} is already in use`,
    EADDRNOTAVAIL: `${where} is not an address of this machine; add it to an interface first (ip addr add 169.254.169.254/32 dev IFACE)`,
    EACCES: `${where}: ports below 1024 need root or CAP_NET_BIND_SERVICE`,
  };
  const reason = error.code === undefined ? undefined : reasons[error.code];
  return reason === undefined ? error : new ConfigError(`--metadata-listen ${reason}`, { cause: error });
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
    merge: createConfigMerger(options.config.platform.baseIgnition),
    onInternalError: (error) =>
      options.logger.error('metadata.internal_error', { cause: describeError(error) }),
  });
  const server = createAdaptorServer({ fetch: app.fetch }) as Server;
  const where = `${options.host}:${options.port}`;
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => reject(listenProblem(error, where)));
    server.listen(options.port, options.host, () => resolve((server.address() as AddressInfo).port));
  });
  const url = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`;
  options.logger.info('metadata.listening', { url });
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
