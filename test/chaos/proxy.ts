import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface OutageProxy {
  /** `http://127.0.0.1:PORT`: point clients here instead of at the stand-in. */
  url: string;
  /** Refuse connections and cut open ones for `ms`, then listen again on the same port. */
  outage(ms: number): Promise<void>;
  /** Outages so far. */
  readonly outages: number;
  close(): Promise<void>;
}

/**
 * A TCP relay in front of a stand-in, so the stand-in can vanish as a real service does (connection
 * refused, connections reset) while its state survives the gap.
 */
export async function startOutageProxy(target: string): Promise<OutageProxy> {
  const { hostname, port: targetPort } = new URL(target);
  const sockets = new Set<Socket>();
  let outages = 0;
  let closed = false;

  const relay = (client: Socket): void => {
    const upstream = connect(Number(targetPort), hostname);
    sockets.add(client);
    sockets.add(upstream);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  };

  let server: Server = createServer(relay);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;

  const stop = async (): Promise<void> => {
    const closing = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    sockets.clear();
    await closing;
  };

  return {
    url: `http://127.0.0.1:${port}`,
    get outages() {
      return outages;
    },
    async outage(ms) {
      if (closed) return;
      outages++;
      await stop();
      await new Promise((resolve) => setTimeout(resolve, ms));
      if (closed) return;
      server = createServer(relay);
      server.listen(port, '127.0.0.1');
      await once(server, 'listening');
    },
    async close() {
      closed = true;
      if (server.listening) await stop();
    },
  };
}
