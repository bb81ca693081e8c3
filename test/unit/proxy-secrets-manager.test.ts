import {
  GetSecretValueCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createSecretsManagerProxySecrets,
  ProxySecretUnavailableError,
} from '../../shared/metadata/proxy-secrets-manager.ts';

/*
 * A mock of this one SDK client, because no emulator available here speaks Secrets Manager: fauxqs 1.9.2
 * covers S3, SQS and SNS only, and dynalite only DynamoDB. The mock answers at the SDK command level, so
 * what is tested is the provider's use of stages, its cache and its failure handling.
 */
const secretsManager = mockClient(SecretsManagerClient);
const secretId = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:proxy-AbCdEf';
const current = 'C'.repeat(64);
const previous = 'P'.repeat(64);

function stages(values: { AWSCURRENT?: string; AWSPREVIOUS?: string } | Error): void {
  secretsManager.on(GetSecretValueCommand).callsFake((input: { VersionStage?: string }) => {
    if (values instanceof Error) throw values;
    const value = input.VersionStage === 'AWSPREVIOUS' ? values.AWSPREVIOUS : values.AWSCURRENT;
    if (value === undefined) {
      throw new ResourceNotFoundException({ message: 'no such version', $metadata: {} });
    }
    return { SecretString: value, VersionStages: [input.VersionStage ?? 'AWSCURRENT'] };
  });
}

function provider(now: { ms: number }, onStale?: (error: unknown) => void) {
  return createSecretsManagerProxySecrets({
    client: new SecretsManagerClient({ region: 'us-east-1' }),
    secretId,
    ttlMs: 30_000,
    maxStaleMs: 600_000,
    clock: () => now.ms,
    onStale,
  });
}

describe('proxy secrets from Secrets Manager', () => {
  afterEach(() => secretsManager.reset());

  it('accepts AWSCURRENT and AWSPREVIOUS, newest first, asking for each stage by name', async () => {
    stages({ AWSCURRENT: `${current}\n`, AWSPREVIOUS: previous });
    expect(await provider({ ms: 0 })()).toEqual([current, previous]);
    const asked = secretsManager.commandCalls(GetSecretValueCommand).map((c) => c.args[0].input);
    expect(asked).toEqual(
      expect.arrayContaining([
        { SecretId: secretId, VersionStage: 'AWSCURRENT' },
        { SecretId: secretId, VersionStage: 'AWSPREVIOUS' },
      ]),
    );
  });

  it('accepts AWSCURRENT alone on a secret that was never rotated', async () => {
    stages({ AWSCURRENT: current });
    expect(await provider({ ms: 0 })()).toEqual([current]);
  });

  it('reads once per TTL, shares one read among concurrent callers, and sees a rotation after the TTL', async () => {
    stages({ AWSCURRENT: previous });
    const now = { ms: 0 };
    const secrets = provider(now);
    await Promise.all([secrets(), secrets(), secrets()]);
    expect(secretsManager.commandCalls(GetSecretValueCommand)).toHaveLength(2);
    stages({ AWSCURRENT: current, AWSPREVIOUS: previous });
    now.ms = 29_999;
    expect(await secrets()).toEqual([previous]);
    now.ms = 30_000;
    expect(await secrets()).toEqual([current, previous]);
  });

  it('serves the last good copy while Secrets Manager fails, backing off, until it is too old', async () => {
    stages({ AWSCURRENT: current });
    const now = { ms: 0 };
    const stale: unknown[] = [];
    const secrets = provider(now, (error) => stale.push(error));
    await secrets();
    stages(new Error('throttled'));
    now.ms = 40_000;
    expect(await secrets()).toEqual([current]);
    expect(stale).toHaveLength(1);
    const callsAfterFailure = secretsManager.commandCalls(GetSecretValueCommand).length;
    now.ms = 50_000;
    expect(await secrets()).toEqual([current]);
    expect(secretsManager.commandCalls(GetSecretValueCommand)).toHaveLength(callsAfterFailure);
    now.ms = 600_000;
    await expect(secrets()).rejects.toBeInstanceOf(ProxySecretUnavailableError);
  });

  it('fails transiently, never with an empty list, when there is no copy at all', async () => {
    stages(new Error('AccessDenied'));
    await expect(provider({ ms: 0 })()).rejects.toThrow(/cannot read secret .*AccessDenied/);
    stages({ AWSCURRENT: '   ' });
    await expect(provider({ ms: 0 })()).rejects.toThrow(/has no AWSCURRENT string value/);
  });
});
