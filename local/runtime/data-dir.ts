import type { Dirent } from 'node:fs';
import { chmod, mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { sweepStaging } from '../../shared/store/local-store.ts';
import type { Logger } from './log.ts';

/** Bits that let anyone but the owner in. */
const openBits = 0o077;

/**
 * Instance configs (which may hold secrets), the admin token and the ledger live in the data dir, so it is
 * the owner's alone: created 0700. The config bodies are 0600 on top (see `configStoreModes`). The mirror
 * under it keeps world-readable files: it is public by design (anyone may GET /mirror, and a web server
 * may serve the folder directly), so only the data dir's own mode guards it.
 */
export const configStoreModes = { fileMode: 0o600, folderMode: 0o700 } as const;

function octal(mode: number): string {
  return (mode & 0o777).toString(8).padStart(4, '0');
}

/**
 * Create the data dir owner-only, or warn when an existing one lets others in. It is not changed: an
 * operator may have opened it on purpose (a group-readable mirror), and silently closing it would break
 * that; the warning says what to run.
 */
export async function ensurePrivateDataDir(dataDir: string, logger?: Logger): Promise<void> {
  let mode: number | undefined;
  try {
    mode = (await stat(dataDir)).mode;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (mode === undefined) {
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    return;
  }
  if ((mode & openBits) !== 0) {
    logger?.warn('data_dir.open_permissions', {
      dataDir,
      mode: octal(mode),
      risk: 'other users may read instance configs, the ledger and the admin token',
      fix: `chmod 700 ${dataDir}`,
    });
  }
}

/** chmod a tree to the config store's modes; returns how many entries it changed. */
async function tighten(folder: string): Promise<number> {
  let changed = 0;
  let entries: Dirent[];
  try {
    entries = await readdir(folder, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw error;
  }
  for (const entry of entries) {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) {
      changed += await tighten(path);
      await chmod(path, configStoreModes.folderMode);
      changed++;
    } else if (entry.isFile()) {
      await chmod(path, configStoreModes.fileMode);
      changed++;
    }
  }
  return changed;
}

/**
 * Get `{dataDir}/configs` ready: bodies written by an older version (0644 in 0755 folders) are closed
 * once, detected by the folder's own mode so a large store is not walked on every start, and staged
 * bodies orphaned by a crash between write and rename are removed. The runner holds the data-dir lock,
 * so no writer of this process or another is running yet.
 */
export async function prepareConfigStore(configsDir: string, logger: Logger): Promise<void> {
  let mode: number | undefined;
  try {
    mode = (await stat(configsDir)).mode;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (mode === undefined) {
    await mkdir(configsDir, { recursive: true, mode: configStoreModes.folderMode });
  } else if ((mode & openBits) !== 0) {
    const entries = await tighten(configsDir);
    await chmod(configsDir, configStoreModes.folderMode);
    logger.warn('configs.permissions_tightened', {
      folder: configsDir,
      was: octal(mode),
      entries,
      now: `files ${octal(configStoreModes.fileMode)}, folders ${octal(configStoreModes.folderMode)}`,
    });
  }
  const swept = await sweepStaging(configsDir, 0);
  if (swept > 0) logger.info('store.staging_swept', { files: swept, root: configsDir });
}
