import { randomBytes } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, inject, it } from 'vitest';
import { makeAwsClients } from '../../shared/aws-clients.ts';
import { ConfigError, PermanentError, TransientError } from '../../shared/errors.ts';
import { createStore } from '../../shared/store/index.ts';
import { createS3Store, isS3NotFound, mapS3Error } from '../../shared/store/s3-store.ts';
import { emulatorClients, freshBucket, uniqueName } from '../support/emulators.ts';

const MiB = 1024 * 1024;
const clients = emulatorClients();

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {};
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

async function until(condition: () => boolean, what: string, deadlineMs = 10_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

function serviceError(name: string, status: number | undefined): S3ServiceException {
  const error = new S3ServiceException({ name, $fault: 'server', $metadata: { httpStatusCode: status } });
  return error;
}

describe('S3 store on fauxqs', () => {
  it('never has more than partsInFlight UploadPart calls in flight, and write() waits for a free slot', async () => {
    const s3 = makeAwsClients({ s3: inject('fauxqsEndpoint') }).s3;
    const gate = deferred();
    let current = 0;
    let peak = 0;
    s3.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName !== 'UploadPartCommand') return next(args);
        current++;
        peak = Math.max(peak, current);
        try {
          await gate.promise;
          return await next(args);
        } finally {
          current--;
        }
      },
      { step: 'initialize', name: 'countPartsInFlight' },
    );
    const store = createS3Store(s3, {
      bucket: await freshBucket(clients),
      partSizeBytes: 5 * MiB,
      partsInFlight: 2,
    });
    const bytes = randomBytes(27 * MiB);
    const upload = await store.beginUpload('stable/big');

    await upload.write(bytes.subarray(0, 5 * MiB));
    await upload.write(bytes.subarray(5 * MiB, 10 * MiB));
    await until(() => current === 2, 'two parts held in flight');
    let third = 'pending';
    const thirdWrite = upload.write(bytes.subarray(10 * MiB, 15 * MiB)).then(() => {
      third = 'written';
    });
    await until(() => upload.bytesWritten === 15 * MiB, 'the third part to be buffered');
    await new Promise((resolve) => setImmediate(resolve));
    expect(third).toBe('pending');
    expect(current).toBe(2);

    gate.resolve();
    await thirdWrite;
    await upload.write(bytes.subarray(15 * MiB));
    await upload.commit();

    expect(peak).toBe(2);
    expect(Buffer.from((await store.get('stable/big')) ?? []).equals(bytes)).toBe(true);
  });

  it('keeps keys relative to its prefix and never lists outside it', async () => {
    const bucket = await freshBucket(clients);
    await clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'outside/x', Body: 'x' }));
    await clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'mirrored', Body: 'x' }));
    const store = createS3Store(clients.s3, { bucket, prefix: 'mirror' });
    await store.put('stable/a', 'a');

    expect(await store.list('')).toEqual(['stable/a']);
    expect(await store.get('outside/x')).toBeUndefined();
    const direct = makeAwsClients({ s3: inject('fauxqsEndpoint') }).s3;
    const raw = createS3Store(direct, { bucket });
    expect(await raw.list('mirror/')).toEqual(['mirror/stable/a']);
  });

  it('pages through more than one ListObjectsV2 page', async () => {
    const bucket = await freshBucket(clients);
    const store = createS3Store(clients.s3, { bucket });
    const keys = Array.from({ length: 1005 }, (_, i) => `stable/k${String(i).padStart(5, '0')}`);
    for (let i = 0; i < keys.length; i += 50) {
      await Promise.all(keys.slice(i, i + 50).map((k) => store.put(k, '')));
    }
    expect(await store.list('stable/')).toEqual(keys);
  });

  it('reports a missing bucket as a permanent fault, not as a missing object', async () => {
    const store = createS3Store(clients.s3, { bucket: uniqueName('absent') });
    await expect(store.get('stable/a')).rejects.toMatchObject({
      name: 'PermanentError',
      code: 'store-rejected',
    });
    await expect(store.put('stable/a', 'a')).rejects.toBeInstanceOf(PermanentError);
    await expect(store.beginUpload('stable/a')).rejects.toBeInstanceOf(PermanentError);
  });

  it('reports an unreachable endpoint as transient', async () => {
    const s3 = new S3Client({
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:9',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      forcePathStyle: true,
      maxAttempts: 1,
    });
    const store = createS3Store(s3, { bucket: 'cldist-mirror' });
    await expect(store.get('stable/a')).rejects.toMatchObject({
      name: 'TransientError',
      code: 'store-unavailable',
    });
  });

  it.each([
    [{ kmsKeyId: 'alias/cldist-config' }, { sse: 'aws:kms', kms: 'alias/cldist-config' }],
    ['AES256' as const, { sse: 'AES256', kms: undefined }],
  ])('asks for server-side encryption %j on every object it creates', async (sse, expected) => {
    const s3 = makeAwsClients({ s3: inject('fauxqsEndpoint') }).s3;
    const seen: Array<{ command: string; sse: string | undefined; kms: string | undefined }> = [];
    s3.middlewareStack.add(
      (next, context) => async (args) => {
        const headers = (args.request as { headers?: Record<string, string> }).headers ?? {};
        seen.push({
          command: context.commandName ?? '',
          sse: headers['x-amz-server-side-encryption'],
          kms: headers['x-amz-server-side-encryption-aws-kms-key-id'],
        });
        return next(args);
      },
      { step: 'finalizeRequest', name: 'captureSse' },
    );
    const store = createS3Store(s3, { bucket: await freshBucket(clients), sse });
    await store.put('stable/a', 'a');
    const upload = await store.beginUpload('stable/b');
    await upload.write(Buffer.from('b'));
    await upload.commit();

    expect(seen.filter((s) => s.command === 'PutObjectCommand')).toEqual([
      { command: 'PutObjectCommand', ...expected },
    ]);
    expect(seen.filter((s) => s.command === 'CreateMultipartUploadCommand')).toEqual([
      { command: 'CreateMultipartUploadCommand', ...expected },
    ]);
    expect(await store.get('stable/b')).toEqual(new Uint8Array([98]));
  });

  it('refuses part sizes S3 would refuse', () => {
    expect(() => createS3Store(clients.s3, { bucket: 'b', partSizeBytes: 4 * MiB })).toThrow(ConfigError);
    expect(() => createS3Store(clients.s3, { bucket: 'b', partsInFlight: 0 })).toThrow(/partsInFlight/);
  });

  it('is what createStore builds for an s3 config, and a missing client is a config error', async () => {
    const bucket = await freshBucket(clients);
    const config = { kind: 's3' as const, bucket, prefix: 'm/' };
    const store = await createStore(config, { s3: clients.s3, partSizeBytes: 5 * MiB, partsInFlight: 1 });
    await store.put('stable/a', 'a');
    expect(await createS3Store(clients.s3, { bucket }).list('')).toEqual(['m/stable/a']);
    await expect(createStore(config, { partSizeBytes: 5 * MiB, partsInFlight: 1 })).rejects.toThrow(
      ConfigError,
    );
  });
});

describe('S3 store faults no emulator produces', () => {
  it('surfaces a failed UploadPart as TransientError on the next write and on commit, and abort still works', async () => {
    const s3 = new S3Client({ region: 'us-east-1' });
    const mock = mockClient(s3);
    mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'upload-1' });
    const gate = deferred();
    mock.on(UploadPartCommand).callsFake(async () => {
      await gate.promise;
      throw serviceError('ServiceUnavailable', 503);
    });
    mock.on(AbortMultipartUploadCommand).resolves({});
    const store = createS3Store(s3, { bucket: 'cldist-mirror', partSizeBytes: 5 * MiB, partsInFlight: 1 });

    const upload = await store.beginUpload('stable/a');
    await upload.write(randomBytes(5 * MiB));
    const next = upload.write(randomBytes(5 * MiB));
    gate.resolve();
    await expect(next).rejects.toBeInstanceOf(TransientError);
    await expect(next).rejects.toThrow(/UploadPart 1 .*ServiceUnavailable/);
    await expect(upload.commit()).rejects.toMatchObject({
      name: 'TransientError',
      code: 'store-unavailable',
    });
    expect(mock.commandCalls(UploadPartCommand)).toHaveLength(1);
    expect(mock.commandCalls(CompleteMultipartUploadCommand)).toHaveLength(0);

    await upload.abort();
    await upload.abort();
    const aborts = mock.commandCalls(AbortMultipartUploadCommand);
    expect(aborts).toHaveLength(1);
    expect(aborts[0]?.args[0].input).toEqual({
      Bucket: 'cldist-mirror',
      Key: 'stable/a',
      UploadId: 'upload-1',
    });
    mock.restore();
  });

  it('treats an upload S3 no longer knows as already aborted, and retries abort after a transient failure', async () => {
    const s3 = new S3Client({ region: 'us-east-1' });
    const mock = mockClient(s3);
    mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'upload-2' });
    mock
      .on(AbortMultipartUploadCommand)
      .rejectsOnce(serviceError('SlowDown', 503))
      .rejects(serviceError('NoSuchUpload', 404));
    const store = createS3Store(s3, { bucket: 'cldist-mirror' });

    const upload = await store.beginUpload('stable/a');
    await expect(upload.abort()).rejects.toBeInstanceOf(TransientError);
    await expect(upload.abort()).resolves.toBeUndefined();
    expect(mock.commandCalls(AbortMultipartUploadCommand)).toHaveLength(2);
    mock.restore();
  });

  it('lets a commit be retried after CompleteMultipartUpload failed transiently', async () => {
    const s3 = new S3Client({ region: 'us-east-1' });
    const mock = mockClient(s3);
    mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'upload-3' });
    mock.on(UploadPartCommand).resolves({ ETag: '"p1"' });
    mock.on(CompleteMultipartUploadCommand).rejectsOnce(serviceError('InternalError', 500)).resolves({});
    const store = createS3Store(s3, { bucket: 'cldist-mirror' });

    const upload = await store.beginUpload('stable/a');
    await upload.write(Buffer.from('x'));
    await expect(upload.commit()).rejects.toBeInstanceOf(TransientError);
    await upload.commit();

    expect(mock.commandCalls(UploadPartCommand)).toHaveLength(1);
    const completes = mock.commandCalls(CompleteMultipartUploadCommand);
    expect(completes).toHaveLength(2);
    expect(completes[1]?.args[0].input.MultipartUpload).toEqual({ Parts: [{ PartNumber: 1, ETag: '"p1"' }] });
    mock.restore();
  });
});

describe('S3 error classes', () => {
  it.each([
    ['SlowDown', 503, TransientError],
    ['InternalError', 500, TransientError],
    ['ThrottlingException', 400, TransientError],
    ['TooManyRequests', 429, TransientError],
    ['AccessDenied', 403, PermanentError],
    ['InvalidArgument', 400, PermanentError],
    ['NoSuchBucket', 404, PermanentError],
  ])('maps %s (%i) to %o', (name, status, expected) => {
    expect(mapS3Error(serviceError(name, status), 'GetObject', 'k')).toBeInstanceOf(expected);
  });

  it('maps a failure with no HTTP answer (network) to TransientError', () => {
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    expect(mapS3Error(reset, 'GetObject', 'k')).toBeInstanceOf(TransientError);
  });

  it('tells a missing key from a missing bucket', () => {
    expect(isS3NotFound(serviceError('NoSuchKey', 404))).toBe(true);
    expect(isS3NotFound(serviceError('NotFound', 404))).toBe(true);
    expect(isS3NotFound(serviceError('NoSuchBucket', 404))).toBe(false);
    expect(mapS3Error(serviceError('AccessDenied', 403), 'GetObject', 'k')).toMatchObject({
      code: 'store-denied',
    });
  });
});
