import { readFile } from 'node:fs/promises';
import type { Hono } from 'hono';
import { apiPaths } from '../api-routes.ts';
import type { CldistConfig } from '../config.ts';
import { ConfigError } from '../errors.ts';
import type { InstanceServiceDeps } from '../instances/service.ts';
import type { InstanceRecord } from '../instances/types.ts';
import { type ProxySecretsProvider, proxiedIdentity } from './identity.ts';
import type { ServedConfig } from './merge.ts';
import { canonicalAddress } from './params.ts';
import { addressSignatureValid, proxyHeaders } from './proxy-signature.ts';
import { createMetadataApp } from './routes.ts';

/** Where the proxied metadata routes live in the API: the protocol paths follow this prefix. */
export const proxiedPrefix = apiPaths.metadataPrefix;

/** A secret shorter than this could be guessed offline from one signed request. */
export const minimumSecretLength = 16;

/**
 * The metadata proxy's shared secrets from a file: one per line, the first signing, every one accepted,
 * so a rotation is "add the new line first, roll the proxies, drop the old line". Re-read when older than
 * `maxAgeMs`, so a rotation takes effect without a restart. A file that cannot be read later keeps the
 * last good secrets; one that cannot be read at start is a ConfigError.
 */
export async function fileSecretsProvider(path: string, maxAgeMs = 10_000): Promise<ProxySecretsProvider> {
  const read = async (): Promise<readonly string[]> => {
    const lines = (await readFile(path, 'utf8'))
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#'));
    const short = lines.findIndex((line) => line.length < minimumSecretLength);
    if (lines.length === 0 || short >= 0) {
      throw new ConfigError(
        `metadata.proxySecretFile ${path}: expected one or more secrets, one per line, each at least ${minimumSecretLength} characters${short >= 0 ? ` (line ${short + 1} is shorter)` : ''}; generate one with "openssl rand -hex 32"`,
      );
    }
    return lines;
  };
  let secrets: readonly string[];
  try {
    secrets = await read();
  } catch (cause) {
    if (cause instanceof ConfigError) throw cause;
    throw new ConfigError(`metadata.proxySecretFile ${path} cannot be read`, { cause });
  }
  let readAt = Date.now();
  return async () => {
    if (Date.now() - readAt >= maxAgeMs) {
      readAt = Date.now();
      secrets = await read().catch(() => secrets);
    }
    return secrets;
  };
}

export interface ProxiedMetadataOptions {
  secrets: ProxySecretsProvider | undefined;
  deps: InstanceServiceDeps;
  config: CldistConfig;
  merge: (record: InstanceRecord, body: Uint8Array) => ServedConfig;
  retryAfterSeconds: number;
  onInternalError?: (error: unknown) => void;
}

/**
 * The metadata routes behind a trusted proxy, in the API app: `GET /v1/metadata/instance-id` (which
 * instance holds a source address, asked with a signed `X-Instance-Address`) and every protocol path
 * under `/v1/metadata/`, identified by the proxy's signed `X-Instance-ID`. With no secret configured all
 * of them answer 404.
 */
export function mountProxiedMetadata(app: Hono, options: ProxiedMetadataOptions): void {
  app.get(`${proxiedPrefix}/instance-id`, async (c) => {
    c.header('Cache-Control', 'no-store');
    const refuse = (status: 400 | 403 | 404, code: string, message: string) =>
      c.json({ error: { code, message } }, status);
    const secrets = options.secrets === undefined ? [] : await options.secrets();
    if (secrets.length === 0) return refuse(404, 'not-found', 'not found');
    const given = c.req.header(proxyHeaders.address);
    const query = c.req.query('address');
    if (
      given === undefined ||
      !addressSignatureValid(secrets, given, c.req.header(proxyHeaders.addressSignature))
    ) {
      return refuse(403, 'bad-signature', `${proxyHeaders.addressSignature} missing or wrong`);
    }
    if (query !== undefined && query !== given) {
      return refuse(400, 'bad-request', `the address query and ${proxyHeaders.address} differ`);
    }
    const address = canonicalAddress(given);
    if (address === undefined)
      return refuse(400, 'bad-request', `${proxyHeaders.address} is not an IP address`);
    const instanceId = await options.deps.instances.instanceAtAddress(address);
    return instanceId === undefined
      ? refuse(404, 'not-found', 'no instance holds this address')
      : c.json({ instanceId });
  });
  app.route(
    proxiedPrefix,
    createMetadataApp({
      identity: proxiedIdentity(options.secrets),
      deps: options.deps,
      config: options.config,
      merge: options.merge,
      prefix: proxiedPrefix,
      retryAfterSeconds: options.retryAfterSeconds,
      ...(options.onInternalError === undefined ? {} : { onInternalError: options.onInternalError }),
    }),
  );
}
