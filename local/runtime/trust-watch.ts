import { type FSWatcher, watch } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { type CldistConfig, resolveProjectPath } from '../../shared/config.ts';
import { describeError } from '../../shared/errors.ts';
import { fileTrustSource } from '../../shared/trust/file-source.ts';
import {
  loadTrustedKeyring,
  reloadFailure,
  type TrustedKeyring,
} from '../../shared/trust/trusted-keyring.ts';
import { loadKeyring } from '../../shared/verify/keyring.ts';
import type { Logger } from './log.ts';

export interface TrustWatchOptions {
  trust: TrustedKeyring;
  /** The keyring files and the trust file; the trust file need not exist yet. */
  files: string[];
  logger: Logger;
  /** Editors write a file in several steps; one reload follows the last of them. */
  debounceMs?: number;
  /** fs.watch misses events on some file systems (network mounts, some containers); a stat loop backs it. */
  statEveryMs?: number;
}

/**
 * Reloads the keyring when a keyring file or the trust file changes, without a restart. The parent folders
 * are watched, not the files, so a file replaced by rename (how editors and `cp` over a mount save) or
 * created later is seen. The reload itself is the trust source's read: a stat per file, and a read only
 * when one changed. Returns the stop function.
 */
export async function watchTrustFiles(options: TrustWatchOptions): Promise<() => Promise<void>> {
  const { trust, logger } = options;
  const debounceMs = options.debounceMs ?? 200;
  const names = new Map<string, Set<string>>();
  for (const file of options.files) {
    const folder = dirname(file);
    names.set(folder, (names.get(folder) ?? new Set()).add(basename(file)));
  }
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const reload = () => {
    if (stopped) return;
    trust
      .refresh('watch')
      .catch((error: unknown) =>
        logger.error('trust.reload_failed', { location: trust.location, cause: describeError(error) }),
      );
  };
  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(reload, debounceMs);
  };
  const watchers: FSWatcher[] = [];
  for (const [folder, files] of names) {
    await mkdir(folder, { recursive: true });
    try {
      const watcher = watch(folder, { persistent: false }, (_event, name) => {
        if (name === null || files.has(name.toString())) schedule();
      });
      watcher.on('error', (error) =>
        logger.warn('trust.watch_failed', { folder, cause: describeError(error), fallback: 'stat loop' }),
      );
      watchers.push(watcher);
    } catch (error) {
      logger.warn('trust.watch_failed', { folder, cause: describeError(error), fallback: 'stat loop' });
    }
  }
  const poller = setInterval(reload, options.statEveryMs ?? 5_000);
  poller.unref();
  return async () => {
    stopped = true;
    clearTimeout(timer);
    clearInterval(poller);
    for (const watcher of watchers) watcher.close();
  };
}

export interface LocalTrust {
  trust: TrustedKeyring;
  stop(): Promise<void>;
}

/**
 * The single machine's trust: the configured keyring files plus `trustFile` (where a rotated key is dropped,
 * as the trust object is uploaded on AWS), watched and reloaded in place. An unknown signer re-reads them
 * too, so a key dropped in between two watch events is honoured at once.
 */
export async function startLocalTrust(
  config: CldistConfig,
  trustFile: string,
  logger: Logger,
  clock: () => Date,
  timing: { debounceMs?: number; statEveryMs?: number } = {},
): Promise<LocalTrust> {
  const keyringFiles = config.keyring.files.map(resolveProjectPath);
  const source = fileTrustSource({ keyringFiles, trustFile });
  const trust = await loadTrustedKeyring({
    source,
    build: (inputs) =>
      loadKeyring(
        inputs.map((input) => input.text),
        config.keyring.trustedFingerprints,
        inputs.map((input) => input.label),
      ),
    clock,
    minRefreshMs: config.keyring.unknownSignerRecheckSeconds * 1000,
    maxAgeMs: config.keyring.refreshSeconds * 1000,
    onReloaded: (version, reason) => logger.info('trust.reloaded', { location: trustFile, version, reason }),
    onReloadFailed: (error, reason) =>
      logger.error('trust.reload_failed', {
        ...reloadFailure(error, reason, trustFile),
        kept: 'previous keyring',
      }),
  });
  const stop = await watchTrustFiles({ trust, files: source.files, logger, ...timing });
  return { trust, stop };
}
