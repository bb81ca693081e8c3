import { Agent as HttpAgent, type IncomingMessage, type OutgoingHttpHeaders, request } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import * as z from 'zod';
import { PermanentError, TransientError } from '../../shared/errors.ts';
import { proxyHeaders, signAddress, signInstanceId } from '../../shared/metadata/proxy-signature.ts';
import type { LookupAnswer } from './instance-cache.ts';

/** The API did not answer usefully in time (down, unreachable, overloaded): the instance should retry. */
export class MetadataApiUnavailableError extends TransientError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('metadata-api-unavailable', message, options);
    this.name = 'MetadataApiUnavailableError';
  }
}

/** The API refused the proxy itself (wrong secret) or answered nonsense: an operator must act. */
export class MetadataApiRefusedError extends PermanentError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('metadata-api-refused', message, options);
    this.name = 'MetadataApiRefusedError';
  }
}

/** The lookup answer is a tiny JSON object; anything bigger is not the cldist API. */
const maxLookupBodyBytes = 4096;

/**
 * Instance ids travel in a header, so only visible ASCII is acceptable; the API's own ids are far
 * narrower, and anything else means the proxy is talking to something that is not cldist.
 */
const lookupBody = z.object({
  instanceId: z
    .string()
    .min(1)
    .max(256)
    .regex(/^[\x21-\x7e]+$/),
});

export interface ApiClientOptions {
  api: URL;
  secret: () => string;
  /** For the response headers of one API request; a body must also keep moving at least this often. */
  timeoutMs: number;
  /** Keep-alive sockets kept open to the API. */
  maxSockets?: number;
}

export interface ForwardRequest {
  method: string;
  /** The instance's path, starting with `/`, already checked. */
  path: string;
  instanceId: string;
  address: string;
  /** Headers the instance sent that the API may see (already filtered). */
  headers: Record<string, string>;
}

export interface ApiClient {
  lookup(address: string): Promise<LookupAnswer>;
  /** The API's response, headers received, body not yet read; the caller must consume or destroy it. */
  forward(request: ForwardRequest): Promise<IncomingMessage>;
  close(): void;
}

function readSmallBody(response: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    response.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        response.destroy();
        reject(new MetadataApiRefusedError(`the lookup answer is larger than ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    response.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    response.on('error', (cause) =>
      reject(
        new MetadataApiUnavailableError(`reading the lookup answer failed: ${cause.message}`, { cause }),
      ),
    );
  });
}

type Call = (method: string, path: string, headers: OutgoingHttpHeaders) => Promise<IncomingMessage>;

/** One request to the API over the shared agent: headers within `timeoutMs`, then no body stall as long. */
function apiCaller(options: ApiClientOptions, agent: HttpAgent): Call {
  const send = options.api.protocol === 'https:' ? httpsRequest : request;
  const basePath = options.api.pathname.replace(/\/+$/, '');
  return (method, path, headers) =>
    new Promise((resolve, reject) => {
      const outgoing = send(
        {
          protocol: options.api.protocol,
          hostname: options.api.hostname.replace(/^\[|\]$/g, ''),
          port: options.api.port === '' ? undefined : Number(options.api.port),
          method,
          path: `${basePath}${path}`,
          headers: { ...headers, Host: options.api.host },
          agent,
        },
        (response) => {
          clearTimeout(timer);
          // From here on, a stalled body (not a slow one) is what times out. The listener is removed again
          // because the keep-alive socket outlives this response.
          const socket = response.socket;
          const onIdle = () =>
            response.destroy(new Error(`the API sent nothing for ${options.timeoutMs} ms`));
          socket.setTimeout(options.timeoutMs);
          socket.on('timeout', onIdle);
          response.once('close', () => {
            socket.setTimeout(0);
            socket.off('timeout', onIdle);
          });
          resolve(response);
        },
      );
      const timer = setTimeout(
        () => outgoing.destroy(new Error(`no answer within ${options.timeoutMs} ms`)),
        options.timeoutMs,
      );
      // `on`, not `once`: a second error after the first (a reset while the body streams) must not crash.
      outgoing.on('error', (cause) => {
        clearTimeout(timer);
        reject(
          new MetadataApiUnavailableError(
            `${method} ${options.api.origin}${basePath}${path}: ${cause.message}`,
            {
              cause,
            },
          ),
        );
      });
      outgoing.end();
    });
}

/** The API's answer to an address lookup: an instance, none (404), or an error saying who must act. */
async function lookupAnswer(response: IncomingMessage): Promise<LookupAnswer> {
  const status = response.statusCode ?? 0;
  if (status === 404) {
    response.resume();
    return { instanceId: undefined };
  }
  if (status >= 500 || status === 429) {
    response.resume();
    throw new MetadataApiUnavailableError(`the API answered the address lookup with ${status}`);
  }
  if (status !== 200) {
    response.resume();
    throw new MetadataApiRefusedError(
      status === 403
        ? 'the API refused the address lookup signature (403): the proxy and the API do not share the same secret'
        : `the API answered the address lookup with ${status}; is --api the cldist API?`,
    );
  }
  const text = await readSmallBody(response, maxLookupBodyBytes);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new MetadataApiRefusedError('the address lookup answer is not JSON', { cause });
  }
  const result = lookupBody.safeParse(parsed);
  if (!result.success) {
    throw new MetadataApiRefusedError('the address lookup answer has no usable instanceId');
  }
  return { instanceId: result.data.instanceId };
}

/** The cldist API as the proxy sees it: one keep-alive agent, every request signed, every wait bounded. */
export function createApiClient(options: ApiClientOptions): ApiClient {
  const secure = options.api.protocol === 'https:';
  const agentOptions = { keepAlive: true, maxSockets: options.maxSockets ?? 64, maxFreeSockets: 16 };
  const agent = secure ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions);
  const call = apiCaller(options, agent);

  return {
    async lookup(address) {
      const path = `/v1/metadata/instance-id?address=${encodeURIComponent(address)}`;
      const response = await call('GET', path, {
        Accept: 'application/json',
        [proxyHeaders.address]: address,
        [proxyHeaders.addressSignature]: signAddress(options.secret(), address),
      });
      return lookupAnswer(response);
    },

    forward(forwarded) {
      const secret = options.secret();
      return call(forwarded.method, `/v1/metadata${forwarded.path}`, {
        ...forwarded.headers,
        [proxyHeaders.instanceId]: forwarded.instanceId,
        [proxyHeaders.instanceIdSignature]: signInstanceId(secret, forwarded.instanceId),
        [proxyHeaders.address]: forwarded.address,
        [proxyHeaders.addressSignature]: signAddress(secret, forwarded.address),
      });
    },

    close() {
      agent.destroy();
    },
  };
}
