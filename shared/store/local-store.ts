import { randomBytes } from 'node:crypto';
import type { Dirent, Stats } from 'node:fs';
import { type FileHandle, mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { PermanentError } from '../errors.ts';
import { DirectWriter, openDirect } from './direct-writer.ts';
import { assertValidKey, assertValidPrefix, stagingFolder } from './keys.ts';
import { errorCode, isMissing, mapFsError, removeQuietly, syncFolder, writeAll } from './local-fs.ts';
import { assertValidRange, resolveRange } from './range.ts';
import { singleFlight } from './single-flight.ts';
import type { ObjectStore, StagedUpload, StoredStream } from './types.ts';

const readChunkBytes = 1024 * 1024;

/** Every commit renames a new file into place, so the inode tells two same-size writes in one ms apart. */
function etagOf(info: Stats): string {
  return `"${info.ino.toString(16)}-${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
}

export interface LocalStoreModes {
  /** Mode of stored files (before the umask); default 0644, a mirror anyone may read. */
  fileMode?: number;
  /** Mode of the folders the store creates; default 0755. */
  folderMode?: number;
}

/** One store's folder: where keys live, how staged files are made and published, and each operation. */
class LocalFolder {
  private readonly staging: string;

  constructor(
    private readonly base: string,
    private readonly fileMode: number,
    private readonly folderMode: number,
  ) {
    this.staging = join(base, stagingFolder);
  }

  private pathOf(key: string): string {
    return join(this.base, ...key.split('/'));
  }

  private async stagedFile(): Promise<{ path: string; handle: FileHandle }> {
    await mkdir(this.staging, { recursive: true, mode: this.folderMode });
    const path = join(this.staging, randomBytes(12).toString('hex'));
    return { path, handle: await open(path, 'wx', this.fileMode) };
  }

  async publish(tempPath: string, key: string): Promise<void> {
    const target = this.pathOf(key);
    await mkdir(dirname(target), { recursive: true, mode: this.folderMode });
    await rename(tempPath, target);
    await syncFolder(dirname(target));
  }

  async head(key: string): Promise<{ size: number; lastModified: Date; etag?: string } | undefined> {
    assertValidKey(key);
    try {
      const info = await stat(this.pathOf(key));
      if (!info.isFile()) return undefined;
      return { size: info.size, lastModified: info.mtime, etag: etagOf(info) };
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw mapFsError(error, 'stat', key);
    }
  }

  private async walk(folder: string, relative: string, prefix: string, into: string[]): Promise<void> {
    let entries: Dirent[];
    try {
      entries = await readdir(folder, { withFileTypes: true });
    } catch (error) {
      if (isMissing(error)) return;
      throw mapFsError(error, 'list', prefix);
    }
    for (const entry of entries) {
      const key = `${relative}${entry.name}`;
      if (relative === '' && entry.name === stagingFolder) continue;
      if (entry.isDirectory()) {
        const asFolder = `${key}/`;
        if (asFolder.startsWith(prefix) || prefix.startsWith(asFolder)) {
          await this.walk(join(folder, entry.name), asFolder, prefix, into);
        }
      } else if (entry.isFile() && key.startsWith(prefix)) {
        into.push(key);
      }
    }
  }

  async beginUpload(key: string): Promise<StagedUpload> {
    assertValidKey(key);
    let staged: { path: string; handle: FileHandle } | undefined;
    try {
      staged = await this.stagedFile();
      const { path, handle } = staged;
      const direct = await openDirect(path);
      const writer =
        direct === undefined ? undefined : { handle: direct, writer: new DirectWriter(direct, handle) };
      return new StagedFile(path, handle, key, (tempPath, target) => this.publish(tempPath, target), writer);
    } catch (error) {
      if (staged !== undefined) {
        await staged.handle.close().catch(() => undefined);
        await removeQuietly(staged.path).catch(() => undefined);
      }
      throw mapFsError(error, 'stage', key);
    }
  }

  async put(key: string, body: Uint8Array | string): Promise<void> {
    assertValidKey(key);
    let temp: { path: string; handle: FileHandle } | undefined;
    try {
      temp = await this.stagedFile();
      await writeAll(temp.handle, typeof body === 'string' ? Buffer.from(body, 'utf8') : body);
      await temp.handle.sync();
      await temp.handle.close();
      await this.publish(temp.path, key);
    } catch (error) {
      if (temp !== undefined) {
        await temp.handle.close().catch(() => undefined);
        await removeQuietly(temp.path).catch(() => undefined);
      }
      throw mapFsError(error, 'write', key);
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    assertValidKey(key);
    try {
      return new Uint8Array(await readFile(this.pathOf(key)));
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw mapFsError(error, 'read', key);
    }
  }

  async getStream(key: string, range?: { start: number; end?: number }): Promise<StoredStream | undefined> {
    assertValidKey(key);
    if (range !== undefined) assertValidRange(key, range);
    let handle: FileHandle;
    try {
      handle = await open(this.pathOf(key), 'r');
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw mapFsError(error, 'open', key);
    }
    try {
      const info = await handle.stat();
      if (!info.isFile()) {
        await handle.close();
        return undefined;
      }
      const { start, end } =
        range === undefined ? { start: 0, end: info.size - 1 } : resolveRange(key, range, info.size);
      const size = end - start + 1;
      if (size === 0) await handle.close();
      const body =
        size === 0
          ? emptyBody()
          : handle.createReadStream({ start, end, highWaterMark: readChunkBytes, autoClose: true });
      const stream: StoredStream = {
        body,
        size,
        totalSize: info.size,
        etag: etagOf(info),
        lastModified: info.mtime,
      };
      return stream;
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw mapFsError(error, 'read', key);
    }
  }

  async list(prefix: string): Promise<string[]> {
    assertValidPrefix(prefix);
    const keys: string[] = [];
    await this.walk(this.base, '', prefix, keys);
    return keys.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  }

  async delete(key: string): Promise<void> {
    assertValidKey(key);
    try {
      await unlink(this.pathOf(key));
    } catch (error) {
      if (isMissing(error)) return;
      throw mapFsError(error, 'delete', key);
    }
  }
}

/**
 * The single-machine adapter. Staged bytes live under `{root}/.staging`, on the same filesystem as the
 * target, so `commit` is one atomic rename after an fsync: a crash leaves either nothing or the whole file.
 * The mode is set when the staged file is created, so a body is never readable by more than it should be,
 * not even for a moment.
 */
export function createLocalStore(root: string, modes: LocalStoreModes = {}): ObjectStore {
  const folder = new LocalFolder(resolve(root), modes.fileMode ?? 0o644, modes.folderMode ?? 0o755);
  return {
    beginUpload: (key) => folder.beginUpload(key),
    put: (key, body) => folder.put(key, body),
    get: (key) => folder.get(key),
    getStream: (key, range) => folder.getStream(key, range),
    head: (key) => folder.head(key),
    list: (prefix) => folder.list(prefix),
    delete: (key) => folder.delete(key),
  };
}

async function* emptyBody(): AsyncIterable<Uint8Array> {}

type FileState = 'open' | 'committed' | 'aborted';

/** How much a staged file may run ahead of the disk before a background datasync starts. */
const backgroundSyncBytes = 32 * 1024 * 1024;

class StagedFile implements StagedUpload {
  #bytesWritten = 0;
  #state: FileState = 'open';
  #closed = false;
  /** A failed write may have left part of a chunk on disk, so nothing after it may be committed. */
  #failure: Error | undefined;
  #writeQueue: Promise<void> = Promise.resolve();
  #unsynced = 0;
  #syncing: Promise<void> | undefined;
  #syncFailure: Error | undefined;

  constructor(
    private readonly path: string,
    private readonly handle: FileHandle,
    private readonly key: string,
    private readonly publish: (tempPath: string, key: string) => Promise<void>,
    /** The O_DIRECT path for the bulk of the bytes, where the file system takes it. */
    private readonly direct?: { handle: FileHandle; writer: DirectWriter },
  ) {}

  get bytesWritten(): number {
    return this.#bytesWritten;
  }

  write(chunk: Uint8Array): Promise<void> {
    const run = this.#writeQueue.then(async () => {
      this.#assertOpen('write');
      if (this.#failure !== undefined) throw this.#failure;
      try {
        if (this.direct === undefined) await writeAll(this.handle, chunk);
        else await this.direct.writer.write(chunk);
      } catch (error) {
        this.#failure = mapFsError(error, 'write', this.key);
        throw this.#failure;
      }
      this.#bytesWritten += chunk.byteLength;
      this.#unsynced += chunk.byteLength;
      // Direct writes leave no dirty pages behind for a background sync to start on.
      if (this.direct === undefined && this.#unsynced >= backgroundSyncBytes && this.#syncing === undefined) {
        this.#startSync();
      }
    });
    this.#writeQueue = run.catch(() => undefined);
    return run;
  }

  /**
   * Writeback runs while the stream goes on, so the commit's fsync has a few MiB left to flush instead of the
   * whole artifact. A failure is kept for the commit: a file whose data may not be on disk is never published.
   */
  #startSync(): void {
    this.#unsynced = 0;
    this.#syncing = this.handle
      .datasync()
      .catch((error: unknown) => {
        this.#syncFailure ??= mapFsError(error, 'sync', this.key);
      })
      .finally(() => {
        this.#syncing = undefined;
      });
  }

  readonly #commitOnce = singleFlight(() => this.#commitNow());

  commit(): Promise<void> {
    return this.#commitOnce();
  }

  async #commitNow(): Promise<void> {
    await this.#writeQueue;
    await this.#syncing;
    if (this.#state === 'committed') return;
    this.#assertOpen('commit');
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#syncFailure !== undefined) throw this.#syncFailure;
    try {
      if (!this.#closed) {
        await this.direct?.writer.finish();
        await this.handle.sync();
        await this.#close();
      }
      await this.publish(this.path, this.key);
    } catch (error) {
      throw mapFsError(error, 'commit', this.key);
    }
    this.#state = 'committed';
  }

  async abort(): Promise<void> {
    if (this.#state === 'committed') return;
    this.#state = 'aborted';
    await this.#writeQueue;
    await this.#syncing;
    try {
      await this.#close();
      await removeQuietly(this.path);
    } catch (error) {
      throw mapFsError(error, 'abort', this.key);
    }
  }

  async #close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.direct !== undefined) {
      await this.direct.writer.release();
      await this.direct.handle.close().catch(() => undefined);
    }
    await this.handle.close();
  }

  #assertOpen(action: string): void {
    if (this.#state !== 'open') {
      throw new PermanentError(
        'upload-closed',
        `cannot ${action} ${JSON.stringify(this.key)}: the upload was already ${this.#state}`,
      );
    }
  }
}

/**
 * A worker killed mid-upload leaves its staged file behind (invisible, but taking space). The local runner
 * calls this at start; `olderThanMs` keeps it from deleting the files of workers still running.
 */
export async function sweepStaging(
  root: string,
  olderThanMs: number,
  now: number = Date.now(),
): Promise<number> {
  const staging = join(resolve(root), stagingFolder);
  let names: string[];
  try {
    names = await readdir(staging);
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return 0;
    throw mapFsError(error, 'sweep', stagingFolder);
  }
  let removed = 0;
  for (const name of names) {
    const path = join(staging, name);
    try {
      const info = await stat(path);
      if (info.isFile() && now - info.mtimeMs >= olderThanMs) {
        await removeQuietly(path);
        removed++;
      }
    } catch (error) {
      if (errorCode(error) !== 'ENOENT') throw mapFsError(error, 'sweep', name);
    }
  }
  return removed;
}
