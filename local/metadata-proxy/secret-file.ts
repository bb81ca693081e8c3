import { type FSWatcher, watch } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { ConfigError, describeError } from '../../shared/errors.ts';
import type { Logger } from '../runtime/log.ts';

/**
 * Shorter secrets could be guessed offline from one signed request. The API applies the same minimum to
 * its own secret file, so one file can serve both.
 */
export const minimumSecretLength = 16;

/** Past this the file is not a secret but a mistake (a key bundle, a log), and is refused unread. */
const maximumSecretFileBytes = 4096;

/**
 * The secret the proxy signs with: the first line of the file. The format is the API's own secret file
 * (one secret per line, blank lines and `#` comments ignored, the first one current), so during a rotation
 * the same file can list the new secret first and the old one after it. The message never quotes a secret.
 */
export function parseSecret(text: string, file: string): string {
  const lines = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const [first] = lines;
  if (first === undefined) {
    throw new ConfigError(`--secret-file ${file} holds no secret; write the shared secret into it`);
  }
  const spaced = lines.findIndex((line) => /\s/.test(line));
  if (spaced >= 0) {
    throw new ConfigError(
      `--secret-file ${file}: secret ${spaced + 1} has whitespace inside; write one secret per line`,
    );
  }
  const short = lines.findIndex((line) => line.length < minimumSecretLength);
  if (short >= 0) {
    throw new ConfigError(
      `--secret-file ${file}: secret ${short + 1} has ${lines[short]?.length} characters, fewer than ` +
        `${minimumSecretLength}; use a long random one, e.g. \`openssl rand -hex 32\``,
    );
  }
  return first;
}

async function readSecretFile(file: string): Promise<{ secret: string; version: string }> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(file);
  } catch (cause) {
    throw new ConfigError(`--secret-file ${file} cannot be read: ${(cause as Error).message}`, { cause });
  }
  if (!info.isFile()) throw new ConfigError(`--secret-file ${file} is not a regular file`);
  if (info.size > maximumSecretFileBytes) {
    throw new ConfigError(
      `--secret-file ${file} is ${info.size} bytes; a shared secret is a single short line`,
    );
  }
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new ConfigError(`--secret-file ${file} cannot be read: ${(cause as Error).message}`, { cause });
  }
  return { secret: parseSecret(text, file), version: `${info.ino}:${info.size}:${info.mtimeMs}` };
}

export interface SecretSource {
  /** The secret the proxy signs with now. */
  current(): string;
  /** Re-reads the file now; resolves with whether the secret changed. A bad file keeps the old secret. */
  reload(): Promise<boolean>;
  close(): void;
}

export interface SecretFileOptions {
  file: string;
  /** Re-read at least this often, for file systems where watching misses changes (NFS, some bind mounts). */
  reloadEveryMs: number;
  logger: Logger;
}

/**
 * The shared secret, re-read when the file changes (a watch on its directory, so an atomic rename by a
 * secrets agent is seen) and on a timer as a backstop, so a rotated secret is picked up without a restart.
 * The first read must succeed; later bad contents are logged and ignored, so a half-written file never
 * replaces a good secret.
 */
export async function openSecretFile(options: SecretFileOptions): Promise<SecretSource> {
  const { file, logger } = options;
  let loaded = await readSecretFile(file);
  let reading: Promise<boolean> | undefined;

  const reload = (): Promise<boolean> => {
    reading ??= (async () => {
      try {
        const next = await readSecretFile(file);
        const changed = next.secret !== loaded.secret;
        loaded = next;
        if (changed) logger.info('proxy.secret_reloaded', { file });
        return changed;
      } catch (error) {
        logger.warn('proxy.secret_unreadable', {
          file,
          reason: describeError(error),
          action: 'still signing with the previous secret; fix the file',
        });
        return false;
      } finally {
        reading = undefined;
      }
    })();
    return reading;
  };

  const timer = setInterval(() => void reload(), options.reloadEveryMs);
  timer.unref();
  let watcher: FSWatcher | undefined;
  try {
    const name = basename(file);
    watcher = watch(dirname(file), { persistent: false }, (_event, changed) => {
      if (changed === null || changed === name) void reload();
    });
    watcher.on('error', () => {
      watcher?.close();
      watcher = undefined;
    });
  } catch {
    // The timer alone still picks changes up.
    watcher = undefined;
  }
  return {
    current: () => loaded.secret,
    reload,
    close: () => {
      clearInterval(timer);
      watcher?.close();
    },
  };
}
