import { createHash } from 'node:crypto';

/** One file on the sim origin; large artifacts are generated from `seed` instead of held. */
export interface StoredObject {
  size: number;
  /** Present for small files; large artifacts are generated from `seed`. */
  content?: Buffer;
  seed?: string;
  baseTag: string;
  generation: number;
  modified: Date;
}

export function toBuffer(content: string | Uint8Array): Buffer {
  return typeof content === 'string' ? Buffer.from(content) : Buffer.from(content);
}

export function shortHash(input: string | Uint8Array): string {
  return createHash('sha256').update(input).digest('hex').slice(0, 20);
}

export function etagOf(object: StoredObject): string {
  return `"${object.baseTag}-${object.generation}"`;
}

/** HTTP dates have whole seconds; a change must move Last-Modified visibly. */
export function nextModified(previous?: Date): Date {
  const now = Math.floor(Date.now() / 1000) * 1000;
  return new Date(previous === undefined ? now : Math.max(now, previous.getTime() + 1000));
}

/**
 * `current` (`current-2023` for a Flatcar LTS stream) names a version folder rather than holding files:
 * `/{channel}/{board}/current/version.txt` is `/{channel}/{board}/{version}/version.txt`.
 */
const currentPath = /^\/([^/]+)\/([^/]+)\/(current(?:-\d{4})?)\/([^/]+)$/;

/** The origin's files and its `current` pointers. */
export class ObjectStore {
  private readonly objects = new Map<string, StoredObject>();
  private readonly current = new Map<string, { version: string; modified: Date }>();

  put(path: string, object: Omit<StoredObject, 'generation' | 'modified'>): void {
    const previous = this.objects.get(path);
    this.objects.set(path, {
      ...object,
      generation: (previous?.generation ?? 0) + 1,
      modified: nextModified(),
    });
  }

  putContent(path: string, content: string | Uint8Array): void {
    const buffer = toBuffer(content);
    this.put(path, { size: buffer.length, content: buffer, baseTag: shortHash(buffer) });
  }

  /** The stored object itself (not a copy), so a fault can change its validators. */
  raw(path: string): StoredObject | undefined {
    return this.objects.get(this.pointer(path).target);
  }

  delete(path: string): void {
    this.objects.delete(path);
  }

  link(path: string, target: string): void {
    const object = this.objects.get(target);
    if (!object) throw new Error(`sim origin: cannot link ${path} to ${target}, which does not exist`);
    this.objects.set(path, object);
  }

  setCurrent(channel: string, board: string, version: string, folder = 'current'): void {
    const key = `/${channel}/${board}/${folder}`;
    const previous = this.current.get(key);
    this.current.set(key, { version, modified: nextModified(previous?.modified) });
  }

  /** A file under a `current` folder is the current version's, modified no earlier than the pointer moved. */
  resolve(path: string): StoredObject | undefined {
    const { target, modified } = this.pointer(path);
    const object = this.objects.get(target);
    if (!object || modified === undefined || object.modified > modified) return object;
    return { ...object, modified };
  }

  private pointer(path: string): { target: string; modified?: Date } {
    const match = currentPath.exec(path);
    if (!match) return { target: path };
    const [, channel, board, folder, file] = match;
    const pointer = this.current.get(`/${channel}/${board}/${folder}`);
    return pointer
      ? { target: `/${channel}/${board}/${pointer.version}/${file}`, modified: pointer.modified }
      : { target: '' };
  }
}
