import { createHash, randomBytes } from 'node:crypto';
import { type FileHandle, mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DirectWriter, openDirect } from '../../shared/store/direct-writer.ts';

const MiB = 1 << 20;
const folders: string[] = [];
const handles: FileHandle[] = [];

afterEach(async () => {
  for (const handle of handles.splice(0)) await handle.close().catch(() => undefined);
  for (const folder of folders.splice(0)) await rm(folder, { recursive: true, force: true });
});

async function stagedFile(base = tmpdir()): Promise<{ path: string; buffered: FileHandle }> {
  const folder = await mkdtemp(join(base, 'cldist-direct-'));
  folders.push(folder);
  const path = join(folder, 'staged');
  const buffered = await open(path, 'wx', 0o644);
  handles.push(buffered);
  return { path, buffered };
}

/** Feeds `sizes` random chunks and returns the SHA-512 of what went in. */
async function feed(writer: DirectWriter, sizes: number[]): Promise<string> {
  const hash = createHash('sha512');
  for (const size of sizes) {
    const chunk = randomBytes(size);
    hash.update(chunk);
    await writer.write(chunk);
  }
  return hash.digest('hex');
}

const sha512 = (bytes: Uint8Array): string => createHash('sha512').update(bytes).digest('hex');

/** A descriptor whose writes all fail with `code`, counting the attempts. */
function failing(code: string): { handle: FileHandle; attempts: () => number } {
  let attempts = 0;
  const handle = {
    write: async () => {
      attempts++;
      throw Object.assign(new Error(`write: ${code}`), { code });
    },
  } as unknown as FileHandle;
  return { handle, attempts: () => attempts };
}

describe('DirectWriter', () => {
  it('stores chunks of any size across block boundaries byte for byte, the shorter tail included', async () => {
    const { path, buffered } = await stagedFile();
    // Where the file system refuses O_DIRECT the ordinary descriptor stands in: the blocks are the same.
    const direct = (await openDirect(path)) ?? buffered;
    if (direct !== buffered) handles.push(direct);
    const writer = new DirectWriter(direct, buffered);
    const sizes = [1, MiB - 1, MiB, 3, 2 * MiB + 7, 65_536, MiB + 12_345];
    const expected = await feed(writer, sizes);
    await writer.finish();
    await writer.release();
    const stored = await readFile(path);
    expect(stored.byteLength).toBe(sizes.reduce((sum, size) => sum + size, 0));
    expect(sha512(stored)).toBe(expected);
  });

  it('writes a block the direct descriptor refuses as misaligned through the page cache, and every later one', async () => {
    const { path, buffered } = await stagedFile();
    const refusing = failing('EINVAL');
    const writer = new DirectWriter(refusing.handle, buffered);
    const expected = await feed(writer, [MiB, MiB, MiB, 100]);
    await writer.finish();
    await writer.release();
    expect(sha512(await readFile(path))).toBe(expected);
    expect(refusing.attempts()).toBe(1);
  });

  it('fails on any other write error instead of writing around it', async () => {
    const { buffered } = await stagedFile();
    const full = failing('ENOSPC');
    const writer = new DirectWriter(full.handle, buffered);
    const outcome = (async () => {
      await feed(writer, [MiB, MiB, MiB]);
      await writer.finish();
    })();
    await expect(outcome).rejects.toMatchObject({ code: 'ENOSPC' });
    await writer.release();
  });
});
