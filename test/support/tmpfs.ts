import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, open, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Tmpfs {
  path: string;
  /** Write a file until the filesystem refuses with ENOSPC; returns its path and size. */
  fill(): Promise<{ path: string; bytes: number }>;
  unmount(): Promise<void>;
}

/**
 * A small tmpfs, the one honest way to get a real full disk (ENOSPC from the kernel, in LevelDB and in
 * the store alike). Needs root and a kernel that lets this process mount: CI runs as root on a fresh
 * machine; a container without CAP_SYS_ADMIN cannot, and the probe below says why.
 */
export async function mountTmpfs(path: string, sizeBytes: number): Promise<Tmpfs> {
  await mkdir(path, { recursive: true });
  await run('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes},mode=0755`, 'tmpfs', path]);
  let ballasts = 0;
  return {
    path,
    async fill() {
      const file = join(path, `ballast-${ballasts++}`);
      const handle = await open(file, 'w');
      const chunk = Buffer.alloc(256 * 1024, 1);
      let bytes = 0;
      try {
        for (let i = 0; i < 1_000_000; i++) {
          const { bytesWritten } = await handle.write(chunk);
          bytes += bytesWritten;
        }
        throw new Error(`${path} never filled up`);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
      } finally {
        await handle.close();
      }
      return { path: file, bytes };
    },
    async unmount() {
      await run('umount', ['-l', path]).catch(() => undefined);
      await rmdir(path).catch(() => undefined);
    },
  };
}

/** Whether this machine lets the tests mount a tmpfs, and if not, why (for the skip's name). */
export async function probeTmpfs(): Promise<{ available: boolean; reason: string }> {
  if (process.platform !== 'linux') return { available: false, reason: 'tmpfs mounts need Linux' };
  if (process.getuid?.() !== 0) return { available: false, reason: 'mounting a tmpfs needs root' };
  const dir = await mkdtemp(join(tmpdir(), 'cldist-tmpfs-probe-'));
  try {
    const mounted = await mountTmpfs(join(dir, 'mnt'), 1024 * 1024);
    await mounted.unmount();
    return { available: true, reason: '' };
  } catch (error) {
    return {
      available: false,
      reason: `mount -t tmpfs failed here: ${(error as Error).message.split('\n')[0]}`,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
