import { readFileSync } from 'node:fs';
import { DeleteObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { resolveProjectPath } from '../../shared/config.ts';
import { ConfigError, TransientError } from '../../shared/errors.ts';
import { loadTrustExtension, maxTrustObjectBytes } from '../../shared/trust-store.ts';
import { emulatorClients, freshBucket } from '../support/emulators.ts';

const flatcarKey = readFileSync(resolveProjectPath('keys/Flatcar_Image_Signing_Key.asc'), 'utf8');
const coreosKey = readFileSync(resolveProjectPath('keys/CoreOS_Image_Signing_Key.asc'), 'utf8');
const key = 'trust/keyring.asc';

function manualClock(start = Date.parse('2026-11-26T10:00:00Z')) {
  let now = start;
  return {
    clock: () => new Date(now),
    advance: (ms: number) => {
      now += ms;
    },
  };
}

describe('loadTrustExtension against S3 (fauxqs)', () => {
  const clients = emulatorClients();
  const { s3 } = clients;
  const put = (bucket: string, body: string) =>
    s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));

  it('answers no keys when the object does not exist', async () => {
    const bucket = await freshBucket(clients, 'trust');
    const { clock } = manualClock();
    await expect(loadTrustExtension(s3, bucket, key, { ttlMs: 60_000, clock })).resolves.toEqual([]);
  });

  it('answers no keys for an empty object, the documented way to clear an extension', async () => {
    const bucket = await freshBucket(clients, 'trust');
    await put(bucket, '\n');
    const { clock } = manualClock();
    await expect(loadTrustExtension(s3, bucket, key, { ttlMs: 60_000, clock })).resolves.toEqual([]);
  });

  it('splits a concatenated keyring into one armored text per key', async () => {
    const bucket = await freshBucket(clients, 'trust');
    await put(bucket, `comment line from an operator\n${flatcarKey}\n${coreosKey}`);
    const { clock } = manualClock();
    const keys = await loadTrustExtension(s3, bucket, key, { ttlMs: 60_000, clock });
    expect(keys).toHaveLength(2);
    expect(keys[0]?.trim()).toBe(flatcarKey.trim());
    expect(keys[1]?.trim()).toBe(coreosKey.trim());
  });

  it('reuses the keyring within the TTL and reads the object again after it', async () => {
    const bucket = await freshBucket(clients, 'trust');
    await put(bucket, flatcarKey);
    const { clock, advance } = manualClock();
    const options = { ttlMs: 60_000, clock };
    expect(await loadTrustExtension(s3, bucket, key, options)).toHaveLength(1);

    await put(bucket, `${flatcarKey}\n${coreosKey}`);
    advance(59_999);
    expect(await loadTrustExtension(s3, bucket, key, options)).toHaveLength(1);
    advance(1);
    expect(await loadTrustExtension(s3, bucket, key, options)).toHaveLength(2);

    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    advance(60_000);
    expect(await loadTrustExtension(s3, bucket, key, options)).toEqual([]);
  });

  it('shares one read between callers that arrive while it is in flight', async () => {
    const bucket = await freshBucket(clients, 'trust');
    await put(bucket, flatcarKey);
    const { clock } = manualClock();
    const first = loadTrustExtension(s3, bucket, key, { ttlMs: 60_000, clock });
    const second = loadTrustExtension(s3, bucket, key, { ttlMs: 60_000, clock });
    expect(second).toBe(first);
    expect(await second).toHaveLength(1);
  });

  it('rejects an object without a public key block, naming the object, and does not cache the failure', async () => {
    const bucket = await freshBucket(clients, 'trust');
    await put(bucket, 'not a key\n');
    const { clock } = manualClock();
    const options = { ttlMs: 60_000, clock };
    const failure = loadTrustExtension(s3, bucket, key, options);
    await expect(failure).rejects.toBeInstanceOf(ConfigError);
    await expect(failure).rejects.toThrow(
      `s3://${bucket}/${key} holds no "-----BEGIN PGP PUBLIC KEY BLOCK-----"`,
    );

    await put(bucket, flatcarKey);
    expect(await loadTrustExtension(s3, bucket, key, options)).toHaveLength(1);
  });

  it('refuses a keyring that contains a private key', async () => {
    const bucket = await freshBucket(clients, 'trust');
    await put(
      bucket,
      `${flatcarKey}\n-----BEGIN PGP PRIVATE KEY BLOCK-----\nxx\n-----END PGP PRIVATE KEY BLOCK-----\n`,
    );
    const { clock } = manualClock();
    await expect(loadTrustExtension(s3, bucket, key, { ttlMs: 60_000, clock })).rejects.toThrow(
      /contains a private key/,
    );
  });

  it('refuses an object larger than a keyring can reasonably be', async () => {
    const bucket = await freshBucket(clients, 'trust');
    await put(bucket, `${flatcarKey}\n${'#'.repeat(maxTrustObjectBytes)}`);
    const { clock } = manualClock();
    await expect(loadTrustExtension(s3, bucket, key, { ttlMs: 60_000, clock })).rejects.toThrow(
      /at most 1048576 are accepted|larger than 1048576 bytes/,
    );
  });

  it('reports a missing bucket as a deployment error', async () => {
    const { clock } = manualClock();
    const failure = loadTrustExtension(s3, 'no-such-bucket-cldist', key, { ttlMs: 60_000, clock });
    await expect(failure).rejects.toBeInstanceOf(ConfigError);
    await expect(failure).rejects.toThrow(
      /s3:\/\/no-such-bucket-cldist\/trust\/keyring.asc \(NoSuchBucket\)/,
    );
  });

  it('reports an unreachable S3 endpoint as transient, so the job is retried', async () => {
    const unreachable = new S3Client({
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:9',
      forcePathStyle: true,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      maxAttempts: 1,
    });
    const { clock } = manualClock();
    const failure = loadTrustExtension(unreachable, 'any-bucket', key, { ttlMs: 60_000, clock });
    await expect(failure).rejects.toBeInstanceOf(TransientError);
    await expect(failure).rejects.toMatchObject({ code: 'trust-keyring-unavailable' });
  });
});
