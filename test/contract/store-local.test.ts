import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLocalStore } from '../../shared/store/index.ts';

let root: string | undefined;

afterEach(async () => {
  if (root !== undefined) await rm(root, { recursive: true, force: true });
});

describe('local store: large uploads', () => {
  it('a 70 MiB upload in 1 MiB writes commits byte for byte and leaves no staging', async () => {
    root = await mkdtemp(join(tmpdir(), 'cldist-local-store-'));
    const store = createLocalStore(root);
    const upload = await store.beginUpload('stable/amd64-usr/1.0.0/image.bin');
    const chunk = randomBytes(1024 * 1024);
    const expected = createHash('sha512');
    for (let i = 0; i < 70; i++) {
      chunk[0] = i;
      expected.update(chunk);
      await upload.write(new Uint8Array(chunk));
    }
    expect(await store.head('stable/amd64-usr/1.0.0/image.bin')).toBeUndefined();
    await upload.commit();
    const stored = await store.get('stable/amd64-usr/1.0.0/image.bin');
    expect(stored?.byteLength).toBe(70 * 1024 * 1024);
    expect(
      createHash('sha512')
        .update(stored ?? new Uint8Array())
        .digest('hex'),
    ).toBe(expected.digest('hex'));
    expect(await readdir(join(root, '.staging')).catch(() => [])).toEqual([]);
  });

  it('an abort while a background sync may be running removes the staged file and publishes nothing', async () => {
    root = await mkdtemp(join(tmpdir(), 'cldist-local-store-'));
    const store = createLocalStore(root);
    const upload = await store.beginUpload('stable/amd64-usr/1.0.0/image.bin');
    const chunk = randomBytes(1024 * 1024);
    for (let i = 0; i < 33; i++) await upload.write(chunk);
    await upload.abort();
    expect(await store.head('stable/amd64-usr/1.0.0/image.bin')).toBeUndefined();
    expect(await readdir(join(root, '.staging')).catch(() => [])).toEqual([]);
    await expect(upload.commit()).rejects.toThrow(/already aborted/);
  });
});
