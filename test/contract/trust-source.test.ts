import { readFileSync } from 'node:fs';
import { DeleteObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { resolveProjectPath } from '../../shared/config.ts';
import { ConfigError, TransientError } from '../../shared/errors.ts';
import { s3TrustSource } from '../../shared/trust/s3-source.ts';
import { maxTrustObjectBytes, type TrustRead } from '../../shared/trust/source.ts';
import { emulatorClients, freshBucket } from '../support/emulators.ts';

const flatcarKey = readFileSync(resolveProjectPath('keys/Flatcar_Image_Signing_Key.asc'), 'utf8');
const coreosKey = readFileSync(resolveProjectPath('keys/CoreOS_Image_Signing_Key.asc'), 'utf8');
const key = 'trust/keyring.asc';

/** The HTTP status of every S3 answer, so a revalidation can be told from a full read. */
function recordStatuses(s3: S3Client): number[] {
  const statuses: number[] = [];
  s3.middlewareStack.add(
    (next) => async (args) => {
      try {
        const out = await next(args);
        statuses.push((out.response as { statusCode?: number }).statusCode ?? 0);
        return out;
      } catch (error) {
        statuses.push((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? 0);
        throw error;
      }
    },
    { step: 'deserialize', name: 'recordStatuses' },
  );
  return statuses;
}

function changed(read: TrustRead) {
  if (!read.changed) throw new Error('expected a changed read');
  return read;
}

describe('s3TrustSource against S3 (fauxqs)', () => {
  const clients = emulatorClients();
  const { s3 } = clients;
  const put = (bucket: string, body: string) =>
    s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));

  it('answers no keys when the object does not exist, then unchanged until it appears', async () => {
    const bucket = await freshBucket(clients, 'trust');
    const source = s3TrustSource(s3, bucket, key);
    const first = changed(await source.read(undefined));
    expect(first.inputs).toEqual([]);
    expect(await source.read(first.version)).toEqual({ changed: false });
    await put(bucket, flatcarKey);
    expect(changed(await source.read(first.version)).inputs).toHaveLength(1);
  });

  it('answers no keys for an empty object, the documented way to clear an extension', async () => {
    const bucket = await freshBucket(clients, 'trust');
    await put(bucket, '\n');
    expect(changed(await s3TrustSource(s3, bucket, key).read(undefined)).inputs).toEqual([]);
  });

  it('splits a concatenated keyring into one armored text per key, labelled with the object', async () => {
    const bucket = await freshBucket(clients, 'trust');
    await put(bucket, `comment line from an operator\n${flatcarKey}\n${coreosKey}`);
    const { inputs } = changed(await s3TrustSource(s3, bucket, key).read(undefined));
    expect(inputs.map((input) => input.text.trim())).toEqual([flatcarKey.trim(), coreosKey.trim()]);
    expect(inputs[0]?.label).toBe(`s3://${bucket}/${key} key #1`);
  });

  it('revalidates an unchanged object by ETag (a 304, no body) and reads a replaced one in full', async () => {
    const bucket = await freshBucket(clients, 'trust');
    await put(bucket, flatcarKey);
    const client = emulatorClients().s3;
    const statuses = recordStatuses(client);
    const source = s3TrustSource(client, bucket, key);
    const first = changed(await source.read(undefined));
    expect(await source.read(first.version)).toEqual({ changed: false });
    expect(statuses).toEqual([200, 304]);

    await put(bucket, `${flatcarKey}\n${coreosKey}`);
    const second = changed(await source.read(first.version));
    expect(second.version).not.toBe(first.version);
    expect(second.inputs).toHaveLength(2);
    expect(statuses).toEqual([200, 304, 200]);

    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    expect(changed(await source.read(second.version)).inputs).toEqual([]);
  });

  it('rejects an object without a public key block, naming the object', async () => {
    const bucket = await freshBucket(clients, 'trust');
    await put(bucket, 'not a key\n');
    const failure = s3TrustSource(s3, bucket, key).read(undefined);
    await expect(failure).rejects.toBeInstanceOf(ConfigError);
    await expect(failure).rejects.toThrow(
      `s3://${bucket}/${key} holds no "-----BEGIN PGP PUBLIC KEY BLOCK-----"`,
    );
  });

  it('refuses a keyring that contains a private key', async () => {
    const bucket = await freshBucket(clients, 'trust');
    await put(
      bucket,
      `${flatcarKey}\n-----BEGIN PGP PRIVATE KEY BLOCK-----\nxx\n-----END PGP PRIVATE KEY BLOCK-----\n`,
    );
    await expect(s3TrustSource(s3, bucket, key).read(undefined)).rejects.toThrow(/contains a private key/);
  });

  it('refuses an object larger than a keyring can reasonably be', async () => {
    const bucket = await freshBucket(clients, 'trust');
    await put(bucket, `${flatcarKey}\n${'#'.repeat(maxTrustObjectBytes)}`);
    await expect(s3TrustSource(s3, bucket, key).read(undefined)).rejects.toThrow(
      /at most 1048576 are accepted|larger than 1048576 bytes/,
    );
  });

  it('reports a missing bucket as a deployment error', async () => {
    const failure = s3TrustSource(s3, 'no-such-bucket-cldist', key).read(undefined);
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
    const failure = s3TrustSource(unreachable, 'any-bucket', key).read(undefined);
    await expect(failure).rejects.toBeInstanceOf(TransientError);
    await expect(failure).rejects.toMatchObject({ code: 'trust-keyring-unavailable' });
  });
});
