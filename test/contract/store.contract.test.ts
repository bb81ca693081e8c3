import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PermanentError } from '../../shared/errors.ts';
import { createStore } from '../../shared/store/index.ts';
import { createLocalStore, sweepStaging } from '../../shared/store/local-store.ts';
import { RangeNotSatisfiableError } from '../../shared/store/range.ts';
import { createS3Store } from '../../shared/store/s3-store.ts';
import type { ObjectStore, StagedUpload, StoredStream } from '../../shared/store/types.ts';
import { type Adapter, describeContract } from '../support/contract.ts';
import { emulatorClients, freshBucket } from '../support/emulators.ts';

const MiB = 1024 * 1024;
const clients = emulatorClients();

const adapters: Adapter<ObjectStore>[] = [
  {
    name: 'S3 on fauxqs',
    make: async () => ({
      subject: createS3Store(clients.s3, {
        bucket: await freshBucket(clients),
        prefix: 'mirror/',
        partSizeBytes: 5 * MiB,
        partsInFlight: 2,
      }),
    }),
  },
  {
    name: 'local folder',
    make: async () => {
      const root = await mkdtemp(join(tmpdir(), 'cldist-store-'));
      return { subject: createLocalStore(root), cleanup: () => rm(root, { recursive: true, force: true }) };
    },
  },
];

async function readAll(stream: StoredStream | undefined): Promise<Buffer> {
  if (stream === undefined) throw new Error('expected a stream, got undefined');
  const chunks: Buffer[] = [];
  for await (const chunk of stream.body) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

function sha512(bytes: Uint8Array): string {
  return createHash('sha512').update(bytes).digest('hex');
}

/** Write in odd-sized chunks so part boundaries fall inside chunks. */
async function writeInChunks(upload: StagedUpload, bytes: Uint8Array, chunkBytes = 1_000_003): Promise<void> {
  for (let offset = 0; offset < bytes.byteLength; offset += chunkBytes) {
    await upload.write(bytes.subarray(offset, offset + chunkBytes));
  }
}

async function expectInvisible(store: ObjectStore, key: string): Promise<void> {
  expect(await store.get(key)).toBeUndefined();
  expect(await store.head(key)).toBeUndefined();
  expect(await store.getStream(key)).toBeUndefined();
  expect(await store.list('')).not.toContain(key);
}

const key = 'stable/amd64-usr/3510.2.8/flatcar_production_pxe.vmlinuz';

describeContract<ObjectStore>('ObjectStore', adapters, (make) => {
  let store: ObjectStore;
  let cleanup: (() => Promise<void>) | undefined;

  beforeEach(async () => {
    const made = await make();
    store = made.subject;
    cleanup = made.cleanup;
  });

  afterEach(async () => {
    await cleanup?.();
  });

  it('keeps a staged object invisible until commit', async () => {
    const upload = await store.beginUpload(key, { contentType: 'application/octet-stream' });
    await upload.write(Buffer.from('hello, '));
    await upload.write(Buffer.from('mirror'));
    expect(upload.bytesWritten).toBe(13);
    await expectInvisible(store, key);

    await upload.commit();

    expect(Buffer.from((await store.get(key)) ?? []).toString()).toBe('hello, mirror');
    expect(await store.head(key)).toMatchObject({ size: 13 });
    expect(await store.list('')).toEqual([key]);
  });

  it('leaves nothing behind after abort, and a second abort is harmless', async () => {
    const upload = await store.beginUpload(key);
    await upload.write(randomBytes(6 * MiB));
    await upload.abort();
    await upload.abort();

    await expectInvisible(store, key);
    expect(await store.list('')).toEqual([]);
    await expect(upload.write(Buffer.from('late'))).rejects.toMatchObject({ code: 'upload-closed' });
    await expect(upload.commit()).rejects.toMatchObject({ code: 'upload-closed' });
    await expectInvisible(store, key);
  });

  it('round-trips a 13 MiB multi-part upload byte for byte', async () => {
    const bytes = randomBytes(13 * MiB);
    const upload = await store.beginUpload(key);
    await writeInChunks(upload, bytes);
    expect(upload.bytesWritten).toBe(bytes.byteLength);
    await upload.commit();

    const stream = await store.getStream(key);
    expect(stream).toMatchObject({ size: bytes.byteLength, totalSize: bytes.byteLength });
    expect(sha512(await readAll(stream))).toBe(sha512(bytes));
    expect(sha512((await store.get(key)) ?? new Uint8Array())).toBe(sha512(bytes));
    expect((await store.head(key))?.size).toBe(bytes.byteLength);
  });

  it('stores an empty object', async () => {
    const upload = await store.beginUpload(key);
    await upload.commit();

    expect((await store.get(key))?.byteLength).toBe(0);
    expect(await store.head(key)).toMatchObject({ size: 0 });
    const stream = await store.getStream(key);
    expect(stream).toMatchObject({ size: 0, totalSize: 0 });
    expect((await readAll(stream)).byteLength).toBe(0);
    await expect(store.getStream(key, { start: 0 })).rejects.toMatchObject({
      name: 'RangeNotSatisfiableError',
      totalSize: 0,
    });
  });

  it('reads byte ranges with inclusive ends, clamped to the object', async () => {
    const bytes = randomBytes(1000);
    await store.put(key, bytes);

    const tail = await store.getStream(key, { start: 990 });
    expect(tail).toMatchObject({ size: 10, totalSize: 1000 });
    expect(await readAll(tail)).toEqual(bytes.subarray(990));

    const middle = await store.getStream(key, { start: 10, end: 19 });
    expect(middle).toMatchObject({ size: 10, totalSize: 1000 });
    expect(await readAll(middle)).toEqual(bytes.subarray(10, 20));

    const clamped = await store.getStream(key, { start: 995, end: 5000 });
    expect(clamped).toMatchObject({ size: 5, totalSize: 1000 });
    expect(await readAll(clamped)).toEqual(bytes.subarray(995));

    const past = store.getStream(key, { start: 1000 });
    await expect(past).rejects.toBeInstanceOf(RangeNotSatisfiableError);
    await expect(past).rejects.toMatchObject({ code: 'range-not-satisfiable', totalSize: 1000 });
    await expect(store.getStream(key, { start: 5, end: 2 })).rejects.toMatchObject({ code: 'bad-range' });
    await expect(store.getStream(key, { start: -1 })).rejects.toMatchObject({ code: 'bad-range' });
    expect(await store.getStream('stable/missing', { start: 0 })).toBeUndefined();
  });

  it('gives the same ETag from head and getStream, and a new one after an overwrite of the same size', async () => {
    await store.put(key, 'first');
    const before = await store.head(key);
    const stream = await store.getStream(key);
    await readAll(stream);
    expect(before?.etag).toEqual(expect.any(String));
    expect(stream?.etag).toBe(before?.etag);
    expect(stream?.lastModified).toBeInstanceOf(Date);
    await store.put(key, 'other');
    expect((await store.head(key))?.etag).not.toBe(before?.etag);
  });

  it('puts, gets and overwrites whole objects', async () => {
    expect(await store.get(key)).toBeUndefined();
    await store.put(key, 'FLATCAR_VERSION=1.0.0\n', { contentType: 'text/plain' });
    expect(Buffer.from((await store.get(key)) ?? []).toString()).toBe('FLATCAR_VERSION=1.0.0\n');

    await store.put(key, new Uint8Array([1, 2, 3]));
    expect(await store.get(key)).toEqual(new Uint8Array([1, 2, 3]));
    expect(await store.head(key)).toMatchObject({ size: 3 });

    const upload = await store.beginUpload(key);
    await upload.write(Buffer.from('staged'));
    expect(await store.get(key)).toEqual(new Uint8Array([1, 2, 3]));
    await upload.commit();
    expect(Buffer.from((await store.get(key)) ?? []).toString()).toBe('staged');
    expect(await store.list('')).toEqual([key]);
  });

  it('lists keys by string prefix, in order', async () => {
    const keys = [
      'stable/amd64-usr/1.0.0/b',
      'stable/amd64-usr/1.0.0/a',
      'stable/arm64-usr/1.0.0/a',
      'beta/amd64-usr/2.0.0/a',
      'stable/amd64-usr/current/version.txt',
    ];
    for (const k of keys) await store.put(k, k);

    expect(await store.list('')).toEqual([...keys].sort());
    expect(await store.list('stable/')).toEqual([
      'stable/amd64-usr/1.0.0/a',
      'stable/amd64-usr/1.0.0/b',
      'stable/amd64-usr/current/version.txt',
      'stable/arm64-usr/1.0.0/a',
    ]);
    expect(await store.list('stable/amd')).toEqual([
      'stable/amd64-usr/1.0.0/a',
      'stable/amd64-usr/1.0.0/b',
      'stable/amd64-usr/current/version.txt',
    ]);
    expect(await store.list('stable/amd64-usr/1.0.0/a')).toEqual(['stable/amd64-usr/1.0.0/a']);
    expect(await store.list('alpha/')).toEqual([]);
  });

  it('deletes objects, and deleting a missing key is not an error', async () => {
    await store.put(key, 'x');
    await store.put(`${key}.sig`, 'y');
    await store.delete(key);
    await expectInvisible(store, key);
    expect(await store.list('')).toEqual([`${key}.sig`]);
    await expect(store.delete(key)).resolves.toBeUndefined();
  });

  it.each([
    ['', 'empty'],
    ['/stable/a', 'starts with "/"'],
    ['stable/../../etc/passwd', '".." segment'],
    ['..', '".." segment'],
    ['stable//a', 'empty path segment'],
    ['stable/a/', 'empty path segment'],
    ['stable/./a', '"." segment'],
    ['stable\\a', 'backslash'],
    ['.staging/abc', '".staging" segment'],
    ['stable/.staging/abc', '".staging" segment'],
    ['stable/a\nb', 'control character'],
  ])('refuses the bad key %j (%s) everywhere', async (badKey, problem) => {
    const attempts: Array<() => Promise<unknown>> = [
      () => store.beginUpload(badKey),
      () => store.put(badKey, 'x'),
      () => store.get(badKey),
      () => store.getStream(badKey),
      () => store.head(badKey),
      () => store.delete(badKey),
    ];
    for (const attempt of attempts) {
      const failure = attempt();
      await expect(failure).rejects.toBeInstanceOf(PermanentError);
      await expect(failure).rejects.toMatchObject({ code: 'bad-key' });
      await expect(failure).rejects.toThrow(JSON.stringify(badKey));
      await expect(failure).rejects.toThrow(problem);
    }
    expect(await store.list('')).toEqual([]);
  });

  it('refuses list prefixes that could escape, but takes partial and folder prefixes', async () => {
    await expect(store.list('../')).rejects.toMatchObject({ code: 'bad-key' });
    await expect(store.list('/stable')).rejects.toMatchObject({ code: 'bad-key' });
    await expect(store.list('.staging/')).rejects.toMatchObject({ code: 'bad-key' });
    await expect(store.list('stable/')).resolves.toEqual([]);
    await expect(store.list('stab')).resolves.toEqual([]);
  });

  it('shows nothing of a writer killed mid-upload, and a later upload of the key completes', async () => {
    const killed = await store.beginUpload(key);
    await writeInChunks(killed, randomBytes(11 * MiB));
    await expectInvisible(store, key);
    expect(await store.list('')).toEqual([]);

    const bytes = randomBytes(7 * MiB);
    const retry = await store.beginUpload(key);
    await writeInChunks(retry, bytes);
    await retry.commit();

    expect(sha512((await store.get(key)) ?? new Uint8Array())).toBe(sha512(bytes));
    expect(await store.list('')).toEqual([key]);
  });

  it('keeps a committed object when abort follows commit, and commit is idempotent', async () => {
    const upload = await store.beginUpload(key);
    await upload.write(Buffer.from('verified'));
    await Promise.all([upload.commit(), upload.commit()]);
    await upload.commit();
    await upload.abort();

    expect(Buffer.from((await store.get(key)) ?? []).toString()).toBe('verified');
    await expect(upload.write(Buffer.from('more'))).rejects.toMatchObject({ code: 'upload-closed' });
  });

  it('keeps the order of writes that were not awaited one by one', async () => {
    const upload = await store.beginUpload(key);
    const big = randomBytes(6 * MiB);
    await Promise.all([upload.write(Buffer.from('a')), upload.write(big), upload.write(Buffer.from('z'))]);
    await upload.commit();
    const stored = Buffer.from((await store.get(key)) ?? []);
    expect(stored.byteLength).toBe(big.byteLength + 2);
    expect(stored.equals(Buffer.concat([Buffer.from('a'), big, Buffer.from('z')]))).toBe(true);
  });

  it('lets concurrent uploads of different keys proceed independently', async () => {
    const one = await store.beginUpload('stable/a');
    const two = await store.beginUpload('stable/b');
    await Promise.all([one.write(Buffer.from('one')), two.write(Buffer.from('two'))]);
    await one.commit();
    await two.abort();
    expect(await store.list('stable/')).toEqual(['stable/a']);
  });
});

describe('local store specifics', () => {
  let root: string;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'cldist-store-'));
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('stages under .staging, leaves it empty after commit and abort, and never lists it', async () => {
    const store = createLocalStore(root);
    const committed = await store.beginUpload(key);
    const aborted = await store.beginUpload('stable/other');
    await committed.write(Buffer.from('a'));
    await aborted.write(Buffer.from('b'));
    expect(await readdir(join(root, '.staging'))).toHaveLength(2);

    await committed.commit();
    await aborted.abort();

    expect(await readdir(join(root, '.staging'))).toEqual([]);
    expect(await store.list('')).toEqual([key]);
  });

  it('sweeps staged files of killed workers older than the cut-off, and only those', async () => {
    const store = createLocalStore(root);
    const killed = await store.beginUpload(key);
    await killed.write(Buffer.from('half'));
    const [killedName] = await readdir(join(root, '.staging'));
    const hourAgo = new Date(Date.now() - 3_600_000);
    await utimes(join(root, '.staging', killedName ?? ''), hourAgo, hourAgo);
    const running = await store.beginUpload('stable/running');
    await running.write(Buffer.from('live'));

    expect(await sweepStaging(root, 10 * 60_000)).toBe(1);

    expect(await readdir(join(root, '.staging'))).toHaveLength(1);
    await running.commit();
    expect(Buffer.from((await store.get('stable/running')) ?? []).toString()).toBe('live');
    expect(await sweepStaging(join(root, 'never-created'), 0)).toBe(0);
  });

  it('refuses a key below an existing object, and abort then cleans the staged file', async () => {
    const store = createLocalStore(root);
    await store.put('stable/a', 'file');
    const upload = await store.beginUpload('stable/a/b');
    await upload.write(Buffer.from('below'));
    await expect(upload.commit()).rejects.toMatchObject({ name: 'PermanentError', code: 'store-rejected' });
    await upload.abort();
    expect(await readdir(join(root, '.staging'))).toEqual([]);
    expect(await store.list('')).toEqual(['stable/a']);
    await expect(store.put('stable/a/c', 'x')).rejects.toMatchObject({ code: 'store-rejected' });
    expect(await readdir(join(root, '.staging'))).toEqual([]);
  });

  it('answers a key that names a folder as absent', async () => {
    const store = createLocalStore(root);
    await store.put('stable/amd64-usr/x', 'x');
    expect(await store.get('stable/amd64-usr')).toBeUndefined();
    expect(await store.head('stable/amd64-usr')).toBeUndefined();
    expect(await store.getStream('stable/amd64-usr')).toBeUndefined();
  });

  it('is what createStore builds for a local config', async () => {
    const store = await createStore(
      { kind: 'local', path: root },
      { partSizeBytes: 5 * MiB, partsInFlight: 1 },
    );
    await store.put('stable/a', 'a');
    expect(await createLocalStore(root).list('')).toEqual(['stable/a']);
  });

  it('streams large objects in 1 MiB chunks', async () => {
    const store = createLocalStore(root);
    await store.put(key, randomBytes(3 * MiB + 5));
    const sizes: number[] = [];
    const stream = await store.getStream(key);
    for await (const chunk of stream?.body ?? []) sizes.push(chunk.byteLength);
    expect(sizes).toEqual([MiB, MiB, MiB, 5]);
  });
});
