import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../shared/config.ts';
import { silentLogger } from '../../shared/mirror/deps.ts';
import { loadMirrorRuntime } from '../../shared/mirror/wiring.ts';
import { parseRuntimeEnv, runtimeEnvNames } from '../../shared/runtime-env.ts';
import { emulatorClients } from '../support/emulators.ts';
import { functionEnvironment, type Synthesized, synthesizeDefault } from './support.ts';

/**
 * The environment the stack writes must pass the handlers' real cold-start wiring, not just the schema:
 * the mirror functions also demand a queue URL and a topic, and read the trust keyring from the mirror
 * bucket. Bundled keyring paths (/var/task/keys) are mapped back to the project's keys/ folder, and the
 * deployed bucket is stood in for by fauxqs.
 */
describe('the deployed environment against the functions’ cold start', () => {
  const clients = emulatorClients();
  let synth: Synthesized;
  let mirrorBucket: string;

  function localEnv(prefix: string): Record<string, string> {
    const env = functionEnvironment(synth, prefix);
    const config = env[runtimeEnvNames.config] ?? '';
    return {
      ...env,
      [runtimeEnvNames.config]: config.replaceAll('/var/task/keys/', `${join(projectRoot, 'keys')}/`),
    };
  }

  beforeAll(async () => {
    synth = synthesizeDefault();
    const env = localEnv('Worker');
    mirrorBucket = parseRuntimeEnv(env).resources.mirrorBucket ?? '';
    await clients.s3.send(new CreateBucketCommand({ Bucket: mirrorBucket }));
  });

  it.each(['Poller', 'Worker'])('builds the %s runtime from the stack environment', async (prefix) => {
    const runtime = await loadMirrorRuntime(localEnv(prefix), { logger: silentLogger, clients });
    expect(runtime.config.store).toMatchObject({ kind: 's3', bucket: mirrorBucket });
    const status = await runtime.deps.signatures.status(new Date('2026-11-26T00:00:00Z'), 30);
    expect(status.current.length).toBeGreaterThan(0);
  });

  it('extends the keyring from the trust object the stack points the functions at', async () => {
    const env = localEnv('Poller');
    const { resources } = parseRuntimeEnv(env);
    const flatcar = readFileSync(join(projectRoot, 'keys', 'Flatcar_Image_Signing_Key.asc'), 'utf8');
    await clients.s3.send(
      new PutObjectCommand({ Bucket: mirrorBucket, Key: resources.trustKeyringKey ?? '', Body: flatcar }),
    );
    await expect(loadMirrorRuntime(env, { logger: silentLogger, clients })).resolves.toBeDefined();

    await clients.s3.send(
      new PutObjectCommand({ Bucket: mirrorBucket, Key: resources.trustKeyringKey ?? '', Body: 'not a key' }),
    );
    await expect(loadMirrorRuntime(env, { logger: silentLogger, clients })).rejects.toThrow(
      /trust keyring s3:\/\/[^/]+\/trust\/keyring\.asc holds no "-----BEGIN PGP PUBLIC KEY BLOCK-----"/,
    );
  });

  it('starts the API handler module with the API environment', async () => {
    const env = localEnv('ApiHandler');
    const saved = { ...process.env };
    try {
      Object.assign(process.env, env);
      const api = await import('../../functions/api/handler.ts');
      expect(typeof api.handler).toBe('function');
    } finally {
      process.env = saved;
    }
    const { resources } = parseRuntimeEnv(env);
    expect(resources.configBucket).toMatch(/^cldist-configbucket/);
    expect(resources.configKmsKeyId).toMatch(/^arn:aws:kms:/);
  });
});
