import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { SignatureV4 } from '@smithy/signature-v4';
import { ConfigError, PermanentError, TransientError } from '../../shared/errors.ts';
import { adminTokenFileName } from '../admin-token.ts';

/** `auto`: IAM for an `execute-api` endpoint (AWS), the admin token otherwise (`cldist serve`). */
type CredentialsProvider = ReturnType<typeof import('@aws-sdk/credential-provider-node').defaultProvider>;

export type AdminAuthMode = 'auto' | 'iam' | 'token';
export const adminAuthModes: readonly AdminAuthMode[] = ['auto', 'iam', 'token'];

export interface AdminClientOptions {
  /** Base URL of the API: `http://127.0.0.1:8080`, or the stack's `ApiUrl` output. */
  api: string;
  auth: AdminAuthMode;
  /** For `token`: the admin token, else the one `cldist serve` stored in `dataDir`. */
  token?: string;
  dataDir: string;
  /** For `iam`: the region to sign for; default the endpoint's own, then AWS_REGION. */
  region?: string;
  /** For `iam`: default the SDK's standard chain (environment, profile, SSO, instance or task role). */
  credentials?: CredentialsProvider;
}

export interface ApiErrorBody {
  error?: { code?: string; message?: string; issues?: { path: string; message: string }[] };
}

export interface AdminClient {
  /** Sends one admin request; a non-2xx answer is thrown (PermanentError for 4xx, TransientError for 5xx). */
  request(method: string, path: string, body?: unknown): Promise<Response>;
  /** Like `request`, but answers the 4xx response instead of throwing, for callers that handle one. */
  send(method: string, path: string, body?: unknown): Promise<Response>;
  /** Sends `text` as it is (JSON lines, say); a non-2xx answer is thrown as `request` does. */
  requestText(method: string, path: string, text: string, contentType: string): Promise<Response>;
  /** Throws a response `send` answered the way `request` would have (a 401 names the token's source). */
  fail(response: Response, method: string, path: string): Promise<never>;
}

const executeApiHost = /^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$/;

async function storedToken(options: AdminClientOptions): Promise<string> {
  if (options.token !== undefined) return options.token;
  const path = join(options.dataDir, adminTokenFileName);
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (cause) {
    throw new ConfigError(
      `no admin token at ${path}: start "cldist serve --data-dir ${options.dataDir}" once, or pass --token`,
      { cause },
    );
  }
}

/** The signer and the credential chain load only for IAM: a bearer-token command never pays for them. */
async function iamSigner(url: URL, options: AdminClientOptions): Promise<SignatureV4> {
  const region = options.region ?? executeApiHost.exec(url.hostname)?.[1] ?? process.env.AWS_REGION;
  if (region === undefined) {
    throw new ConfigError(`--region is required to sign for ${url.host} (or set AWS_REGION)`);
  }
  const [{ SignatureV4 }, { Sha256 }, { defaultProvider }] = await Promise.all([
    import('@smithy/signature-v4'),
    import('@smithy/core/checksum'),
    import('@aws-sdk/credential-provider-node'),
  ]);
  return new SignatureV4({
    service: 'execute-api',
    region,
    credentials: options.credentials ?? defaultProvider(),
    sha256: Sha256,
  });
}

async function signedHeaders(
  signer: SignatureV4,
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: string | undefined,
): Promise<Record<string, string>> {
  const signed = await signer.sign({
    method,
    protocol: url.protocol,
    hostname: url.hostname,
    ...(url.port === '' ? {} : { port: Number(url.port) }),
    path: url.pathname,
    query: Object.fromEntries(url.searchParams),
    headers: { ...headers, host: url.host },
    ...(body === undefined ? {} : { body }),
  });
  const out = { ...signed.headers };
  // fetch sets Host itself and refuses to be told.
  delete out.host;
  return out;
}

/** Where the admin token came from, for a 401: the wrong data dir is the usual cause. */
function tokenSource(options: AdminClientOptions): string {
  if (options.token !== undefined) return 'the admin token given with --token';
  const dir = resolve(options.dataDir);
  return (
    `the admin token from ${join(dir, adminTokenFileName)} (data dir ${dir}); if "cldist serve" runs ` +
    'with another --data-dir (the demo uses ./data/demo), pass that one, or --token'
  );
}

async function failure(response: Response, method: string, url: string, sentToken?: string): Promise<never> {
  const answer = (await response.json().catch(() => ({}))) as ApiErrorBody;
  const issues = answer.error?.issues ?? [];
  const detail =
    issues.length > 0
      ? issues.map((issue) => `  ${issue.path}: ${issue.message}`).join('\n')
      : (answer.error?.message ?? response.statusText);
  const message = `${method} ${url} failed with ${response.status}${issues.length > 0 ? ':\n' : ': '}${detail}`;
  if (response.status >= 500) throw new TransientError('api-failed', message);
  if (response.status === 401 && sentToken !== undefined) {
    throw new PermanentError('api-unauthorized', `${message}; sent ${sentToken}`);
  }
  if (response.status === 403 && answer.error === undefined) {
    throw new PermanentError(
      'api-forbidden',
      `${message}; the IAM identity needs execute-api:Invoke on this API`,
    );
  }
  throw new PermanentError(answer.error?.code ?? 'api-refused', message);
}

/**
 * The CLI's way to the admin API, on one machine (bearer token) and on AWS (SigV4 with the SDK's own signer
 * and credential chain, as the API Gateway IAM authorizer expects). Every admin command goes through it.
 */
export function createAdminClient(options: AdminClientOptions): AdminClient {
  const base = options.api.replace(/\/+$/, '');
  let baseUrl: URL;
  try {
    baseUrl = new URL(base);
  } catch (cause) {
    throw new ConfigError(`--api "${options.api}" is not a URL (e.g. http://127.0.0.1:8080)`, { cause });
  }
  const iam = options.auth === 'iam' || (options.auth === 'auto' && executeApiHost.test(baseUrl.hostname));
  let signer: SignatureV4 | undefined;

  const sendText = async (
    method: string,
    path: string,
    text: string | undefined,
    contentType: string,
  ): Promise<Response> => {
    const url = new URL(`${base}${path}`);
    const headers: Record<string, string> = text === undefined ? {} : { 'content-type': contentType };
    let finalHeaders: Record<string, string>;
    if (iam) {
      signer ??= await iamSigner(url, options);
      finalHeaders = await signedHeaders(signer, url, method, headers, text);
    } else {
      finalHeaders = { ...headers, authorization: `Bearer ${await storedToken(options)}` };
    }
    try {
      return await fetch(url, {
        method,
        headers: finalHeaders,
        ...(text === undefined ? {} : { body: text }),
      });
    } catch (cause) {
      throw new TransientError('api-unreachable', `cannot reach the API at ${options.api}; is it running?`, {
        cause,
      });
    }
  };
  const send = (method: string, path: string, body?: unknown) =>
    sendText(method, path, body === undefined ? undefined : JSON.stringify(body), 'application/json');
  const fail = (response: Response, method: string, path: string) =>
    failure(response, method, `${base}${path}`, iam ? undefined : tokenSource(options));
  const check = (response: Response, method: string, path: string) =>
    response.ok ? response : fail(response, method, path);

  return {
    send,
    fail,
    async request(method, path, body) {
      return check(await send(method, path, body), method, path);
    },
    async requestText(method, path, text, contentType) {
      return check(await sendText(method, path, text, contentType), method, path);
    },
  };
}
