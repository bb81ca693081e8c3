import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdaptorServer } from '@hono/node-server';
import { ConfigError } from '../../shared/errors.ts';
import { closeServer } from '../serve/lifecycle.ts';

export interface ListenerOptions {
  /** The app the listener serves. */
  fetch: (request: Request) => Response | Promise<Response>;
  host: string;
  port: number;
  /** The command-line flag that named the address, so a refusal says which one to change. */
  option: string;
  /** What to do when the host is not an address of this machine (EADDRNOTAVAIL). */
  notLocalHint: string;
}

/** A started listener on its own address, apart from the main server. */
export interface Listener {
  /** `http://HOST:PORT` with the port bound, an IPv6 host in brackets. */
  url: string;
  port: number;
  /** Stops taking connections, closes idle ones now and the rest after two seconds. */
  close(): Promise<void>;
}

function listenProblem(error: NodeJS.ErrnoException, where: string, options: ListenerOptions): Error {
  const reasons: Record<string, string> = {
    EADDRINUSE: `${where} is already in use`,
    EADDRNOTAVAIL: `${where} is not an address of this machine; ${options.notLocalHint}`,
    EACCES: `${where}: ports below 1024 need root or CAP_NET_BIND_SERVICE`,
  };
  const reason = error.code === undefined ? undefined : reasons[error.code];
  return reason === undefined ? error : new ConfigError(`${options.option} ${reason}`, { cause: error });
}

/**
 * Binds an app to a dedicated address (the metadata or the boot listener), turning the usual refusals
 * into errors that name the flag and what to do.
 */
export async function startListener(options: ListenerOptions): Promise<Listener> {
  const server = createAdaptorServer({ fetch: options.fetch }) as Server;
  const where = `${options.host}:${options.port}`;
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => reject(listenProblem(error, where, options)));
    server.listen(options.port, options.host, () => resolve((server.address() as AddressInfo).port));
  });
  const url = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`;
  return { url, port, close: () => closeServer(server) };
}
