import {
  GetSecretValueCommand,
  ResourceNotFoundException,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { describeError, TransientError } from '../errors.ts';
import type { ProxySecretsProvider } from './identity.ts';

/** How long a warm API function reuses a read: the longest a rotation takes to reach it. */
export const proxySecretTtlMs = 30_000;

/** How long the last read stays usable while Secrets Manager cannot be read. */
export const proxySecretMaxStaleMs = 10 * 60_000;

/** The secret could not be read and no recent copy is left: the API answers 503 and the proxy retries. */
export class ProxySecretUnavailableError extends TransientError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('proxy-secret-unavailable', message, options);
    this.name = 'ProxySecretUnavailableError';
  }
}

export interface SecretsManagerProviderOptions {
  client: SecretsManagerClient;
  secretId: string;
  /** How long a read is reused: also the longest a rotation takes to reach a warm function. */
  ttlMs: number;
  /**
   * How long a copy may still be used while Secrets Manager cannot be read, so a short outage there is
   * not an outage of the metadata routes. Past it, callers get `ProxySecretUnavailableError`.
   */
  maxStaleMs: number;
  clock?: () => number;
  /** Told when a refresh failed and a stale copy is served. */
  onStale?: (error: unknown) => void;
}

/** `undefined` when the stage does not exist (a secret that was never rotated has no AWSPREVIOUS). */
async function readStage(
  client: SecretsManagerClient,
  secretId: string,
  stage: 'AWSCURRENT' | 'AWSPREVIOUS',
): Promise<string | undefined> {
  try {
    const out = await client.send(new GetSecretValueCommand({ SecretId: secretId, VersionStage: stage }));
    const value = out.SecretString?.trim();
    return value === undefined || value === '' ? undefined : value;
  } catch (error) {
    if (stage === 'AWSPREVIOUS' && error instanceof ResourceNotFoundException) return undefined;
    throw error;
  }
}

/**
 * The proxy secrets from Secrets Manager: AWSCURRENT and, while it exists, AWSPREVIOUS, so proxies still
 * signing with the secret before a rotation keep working until they have the new one. Read at most once
 * per `ttlMs` (concurrent callers share one read), so a rotation takes effect on warm functions without a
 * redeploy, and a failed refresh keeps serving the last good copy for `maxStaleMs`.
 */
export function createSecretsManagerProxySecrets(
  options: SecretsManagerProviderOptions,
): ProxySecretsProvider {
  const clock = options.clock ?? Date.now;
  let cached: { secrets: readonly string[]; readAt: number } | undefined;
  let refreshing: Promise<readonly string[]> | undefined;
  let failedAt: number | undefined;

  const refresh = async (): Promise<readonly string[]> => {
    const [current, previous] = await Promise.all([
      readStage(options.client, options.secretId, 'AWSCURRENT'),
      readStage(options.client, options.secretId, 'AWSPREVIOUS'),
    ]);
    if (current === undefined) {
      throw new ProxySecretUnavailableError(`secret ${options.secretId} has no AWSCURRENT string value`);
    }
    const secrets = previous === undefined || previous === current ? [current] : [current, previous];
    cached = { secrets, readAt: clock() };
    failedAt = undefined;
    return secrets;
  };

  return async () => {
    const now = clock();
    if (cached !== undefined) {
      const fresh = now - cached.readAt < options.ttlMs;
      // After a failed refresh, wait one TTL before asking again: an outage is not met with a storm.
      const backingOff = failedAt !== undefined && now - failedAt < options.ttlMs;
      if (fresh || (backingOff && now - cached.readAt < options.maxStaleMs)) return cached.secrets;
    }
    refreshing ??= refresh().finally(() => {
      refreshing = undefined;
    });
    try {
      return await refreshing;
    } catch (error) {
      failedAt = now;
      if (cached !== undefined && now - cached.readAt < options.maxStaleMs) {
        options.onStale?.(error);
        return cached.secrets;
      }
      if (error instanceof ProxySecretUnavailableError) throw error;
      throw new ProxySecretUnavailableError(
        `cannot read secret ${options.secretId}: ${describeError(error)}`,
        { cause: error },
      );
    }
  };
}
