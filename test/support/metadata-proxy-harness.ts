import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  request,
  type Server,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  addressSignatureValid,
  instanceIdSignatureValid,
  proxyHeaders,
} from '../../shared/metadata/proxy-signature.ts';

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One HTTP request from a chosen loopback source address (127.0.0.0/8 is all on `lo` on Linux). */
export function ask(
  url: string,
  options: { from?: string; method?: string; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<Answer> {
  // The path goes out byte for byte: a URL object would resolve `%2e%2e` segments before sending.
  const origin = new URL(url);
  return new Promise((resolve, reject) => {
    const outgoing = request(
      {
        host: origin.hostname,
        port: origin.port,
        path: url.slice(origin.origin.length),
        method: options.method ?? 'GET',
        headers: options.headers,
        localAddress: options.from,
        agent: false,
        timeout: options.timeoutMs ?? 10_000,
      },
      (response: IncomingMessage) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        response.on('error', reject);
      },
    );
    outgoing.on('timeout', () => outgoing.destroy(new Error('test request timed out')));
    outgoing.on('error', reject);
    outgoing.end();
  });
}

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

/** How the stand-in answers a metadata request it accepted, per instance id. */
type MetadataAnswer = { status: number; headers?: Record<string, string>; body?: string | Buffer } | 'hang';
export type MetadataResponder = (
  instanceId: string,
  req: IncomingMessage,
) => MetadataAnswer | Promise<MetadataAnswer>;

export interface ContractApi {
  url: string;
  /** Secrets the API accepts (current first), changeable at run time as a rotation would. */
  secrets: string[];
  /** Address → instance id. */
  addresses: Map<string, string>;
  seen: SeenRequest[];
  lookups(): number;
  /** Next lookups answer this status instead of the contract's (e.g. 500); undefined restores it. */
  lookupStatus: number | undefined;
  respond: MetadataResponder;
  close(): Promise<void>;
}

/**
 * The API side of the proxy contract on a loopback port, as small as the contract: the address lookup
 * route and the `/v1/metadata/…` routes, both checking signatures with the shared functions.
 */
export async function startContractApi(secrets: string[]): Promise<ContractApi> {
  let lookupCount = 0;
  const api: Omit<ContractApi, 'url' | 'close'> = {
    secrets,
    addresses: new Map(),
    seen: [],
    lookups: () => lookupCount,
    lookupStatus: undefined,
    respond: (instanceId) => ({
      status: 200,
      headers: { 'Content-Type': 'application/octet-stream' },
      body: `user data of ${instanceId}`,
    }),
  };
  const server: Server = createServer((req, res) => {
    api.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    const url = new URL(req.url ?? '/', 'http://api');
    const header = (name: string) => {
      const value = req.headers[name.toLowerCase()];
      return typeof value === 'string' ? value : undefined;
    };
    if (url.pathname === '/v1/metadata/instance-id') {
      lookupCount += 1;
      if (api.lookupStatus !== undefined) {
        res.writeHead(api.lookupStatus).end();
        return;
      }
      const address = url.searchParams.get('address') ?? '';
      if (
        header(proxyHeaders.address) !== address ||
        !addressSignatureValid(api.secrets, address, header(proxyHeaders.addressSignature))
      ) {
        res.writeHead(403).end();
        return;
      }
      const instanceId = api.addresses.get(address);
      if (instanceId === undefined) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ instanceId }));
      return;
    }
    if (url.pathname.startsWith('/v1/metadata/')) {
      const instanceId = header(proxyHeaders.instanceId);
      if (
        instanceId === undefined ||
        !instanceIdSignatureValid(api.secrets, instanceId, header(proxyHeaders.instanceIdSignature))
      ) {
        res.writeHead(403).end();
        return;
      }
      void Promise.resolve(api.respond(instanceId, req)).then((answer) => {
        if (answer !== 'hang') res.writeHead(answer.status, answer.headers).end(answer.body);
      });
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(api, {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  });
}
