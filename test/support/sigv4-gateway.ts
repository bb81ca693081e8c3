import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Sha256 } from '@smithy/core/checksum';
import { SignatureV4 } from '@smithy/signature-v4';
import type { Hono } from 'hono';

export interface SigV4Gateway {
  url: string;
  /** Authorization headers the gateway accepted and refused, in order. */
  accepted: string[];
  refused: string[];
  close(): Promise<void>;
}

function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

/** `20261203T001500Z` as a Date. */
function amzDate(value: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  return m === null ? undefined : new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`);
}

/**
 * What API Gateway's IAM authorizer does, on loopback: the request is signed again with the SDK's own signer
 * for the same credentials, date and signed headers, and passed to the app only if the signatures agree.
 */
export async function startSigV4Gateway(
  app: Hono,
  credentials: { accessKeyId: string; secretAccessKey: string },
  region: string,
): Promise<SigV4Gateway> {
  const signer = new SignatureV4({ service: 'execute-api', region, credentials, sha256: Sha256 });
  const accepted: string[] = [];
  const refused: string[] = [];
  const server: Server = createServer((request, response) => {
    void (async () => {
      const body = await readBody(request);
      const authorization = String(request.headers.authorization ?? '');
      const signedNames = /SignedHeaders=([^,]+)/.exec(authorization)?.[1]?.split(';') ?? [];
      const date = amzDate(String(request.headers['x-amz-date'] ?? ''));
      const url = new URL(request.url ?? '/', `http://${request.headers.host}`);
      const headers = Object.fromEntries(
        signedNames.map((name) => [name, String(request.headers[name] ?? '')]),
      );
      const expected =
        date === undefined
          ? undefined
          : await signer.sign(
              {
                method: request.method ?? 'GET',
                protocol: 'http:',
                hostname: url.hostname,
                port: Number(url.port),
                path: url.pathname,
                query: Object.fromEntries(url.searchParams),
                headers,
                ...(body.length === 0 ? {} : { body: body.toString('utf8') }),
              },
              { signingDate: date },
            );
      if (expected === undefined || expected.headers.authorization !== authorization) {
        refused.push(authorization);
        response.writeHead(403, { 'content-type': 'application/json' }).end('{"message":"Forbidden"}');
        return;
      }
      accepted.push(authorization);
      // The caller the authorizer vouches for, where API Gateway puts it in the event.
      const iam = {
        accessKey: credentials.accessKeyId,
        userArn: `arn:aws:iam::000000000000:user/${credentials.accessKeyId}`,
      };
      const forwarded = await app.fetch(
        new Request(url, {
          method: request.method ?? 'GET',
          headers: { 'content-type': String(request.headers['content-type'] ?? 'application/json') },
          ...(body.length === 0 ? {} : { body: body.toString('utf8') }),
        }),
        { requestContext: { authorizer: { iam } } },
      );
      response.writeHead(forwarded.status, {
        'content-type': forwarded.headers.get('content-type') ?? 'text/plain',
      });
      response.end(Buffer.from(await forwarded.arrayBuffer()));
    })().catch((error: unknown) => {
      response.writeHead(500).end(String(error));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    accepted,
    refused,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
