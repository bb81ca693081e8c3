import { type FileHandle, open, unlink } from 'node:fs/promises';
import { PermanentError, TransientError } from '../errors.ts';

/** The file system calls the local store shares, with its errors sorted into retry-or-not. */

const transientCodes = new Set(['ENOSPC', 'EMFILE', 'ENFILE', 'EIO', 'EAGAIN', 'EBUSY', 'EDQUOT']);

export function errorCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : undefined;
}

export function isMissing(error: unknown): boolean {
  const code = errorCode(error);
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR';
}

/** Full disks and exhausted descriptors pass; permissions and path clashes do not. */
export function mapFsError(error: unknown, action: string, key: string): Error {
  if (error instanceof PermanentError || error instanceof TransientError) return error;
  const code = errorCode(error) ?? 'unknown';
  const what = `local store could not ${action} ${JSON.stringify(key)}: ${code}`;
  if (transientCodes.has(code)) return new TransientError('store-unavailable', what, { cause: error });
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new PermanentError('store-denied', what, { cause: error });
  }
  return new PermanentError('store-rejected', what, { cause: error });
}

export async function syncFolder(folder: string): Promise<void> {
  const handle = await open(folder, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function writeAll(handle: FileHandle, chunk: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < chunk.byteLength) {
    const { bytesWritten } = await handle.write(chunk, offset, chunk.byteLength - offset);
    offset += bytesWritten;
  }
}

export async function removeQuietly(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (error) {
    if (errorCode(error) !== 'ENOENT') throw error;
  }
}
