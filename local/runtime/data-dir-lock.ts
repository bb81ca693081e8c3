import {
  closeSync,
  fstatSync,
  ftruncateSync,
  openSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { tryLock } from 'fs-native-extensions';
import { ConfigError } from '../../shared/errors.ts';

export const lockFileName = 'serve.pid';

/**
 * One runner per data dir: two dynalite instances on one LevelDB folder crash inside dynalite, and two
 * workers would share one staging folder.
 *
 * The lock is the kernel's, not a PID's liveness: a PID says nothing after a container restart (the new
 * runner often gets the old one's PID, or an unrelated live process has it). Node has no `flock`, so
 * `fs-native-extensions` (prebuilt, shipped in the package) takes an exclusive lock on `serve.pid`; on
 * Linux that is an open-file-description lock (`F_OFD_SETLK`), which the kernel drops when the process
 * dies however it dies, and which also conflicts between two runners inside one process (tests). Other
 * ways were weighed: an abstract Unix socket is as robust but Linux-only and scoped to a network namespace
 * (two containers sharing the volume would not see each other), and a socket file in the data dir has a
 * race when two runners remove a stale one at once.
 *
 * The file holds the PID for people and tools to read; it never decides anything. A file left behind
 * by a killed runner is simply locked again. On release the file is removed while still locked, and a
 * runner that locked a file which was removed meanwhile (inode no longer at the path) tries again, so two
 * runners never each hold a lock on a different inode.
 */
export interface DataDirLock {
  /** Remove the file and drop the lock; idempotent and synchronous, so a forced exit can call it too. */
  release(): void;
}

function holderOf(path: string): string {
  const pid = Number.parseInt(readFileSafe(path), 10);
  return Number.isInteger(pid) && pid > 0 ? ` (pid ${pid})` : '';
}

function readFileSafe(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function sameFile(fd: number, path: string): boolean {
  try {
    const opened = fstatSync(fd);
    const named = statSync(path);
    return opened.ino === named.ino && opened.dev === named.dev;
  } catch {
    return false;
  }
}

/** Lock `{dataDir}/serve.pid` or throw a `ConfigError` naming the holder; the data dir must exist. */
export function lockDataDir(dataDir: string): DataDirLock {
  const path = join(dataDir, lockFileName);
  for (let attempt = 0; attempt < 5; attempt++) {
    const fd = openSync(path, 'a+', 0o600);
    let locked = false;
    try {
      locked = tryLock(fd);
    } catch (error) {
      closeSync(fd);
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      throw new ConfigError(
        `cannot lock ${path} (${code}): its filesystem does not support file locks; put --data-dir on a local filesystem`,
        { cause: error },
      );
    }
    if (!locked) {
      closeSync(fd);
      throw new ConfigError(
        `data dir ${dataDir} is in use by another cldist serve${holderOf(path)}: ${path} is locked; stop that one or pass another --data-dir`,
      );
    }
    if (!sameFile(fd, path)) {
      closeSync(fd);
      continue;
    }
    ftruncateSync(fd);
    writeSync(fd, `${process.pid}\n`);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      try {
        unlinkSync(path);
      } catch {
        // Already gone: nothing to clean.
      }
      closeSync(fd);
    };
    process.once('exit', release);
    return {
      release() {
        process.off('exit', release);
        release();
      },
    };
  }
  throw new ConfigError(
    `could not lock data dir ${dataDir}: ${path} keeps being replaced; is another runner starting?`,
  );
}
