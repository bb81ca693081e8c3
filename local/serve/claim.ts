import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { LedgerStandInOptions } from '../emulators.ts';
import { ensurePrivateDataDir } from '../runtime/data-dir.ts';
import { lockDataDir } from '../runtime/data-dir-lock.ts';
import { type LedgerThread, startLedgerThread } from '../runtime/ledger-thread.ts';
import type { Logger } from '../runtime/log.ts';

/**
 * The data dir made owner-only and locked to this process, with dynalite's thread starting on its ledger
 * folder. Loading dynalite and opening LevelDB take that thread longer than anything else in the start of
 * a run, and they need neither the config nor the SDK, so a host may claim the data dir first and parse
 * its config while the thread starts (`cldist mirror --once` does); `startServe` claims it itself otherwise.
 */
export interface DataDirClaim {
  /** The ledger's folder, `{dataDir}/ledger`. */
  ledgerPath: string;
  /** The started thread; rejects if it could not start. */
  thread: Promise<LedgerThread>;
  /** Stops the thread, then drops the lock; later calls wait for the first. */
  release(): Promise<void>;
}

/** The first crash of a streak is the alarm; the restarts of a disk still full only repeat it. */
function ledgerEventLogger(logger: Logger): NonNullable<LedgerStandInOptions['onLedgerEvent']> {
  return ({ event, ...fields }) => {
    if (event === 'ledger.thread_crashed' && 'streak' in fields && fields.streak === 1) {
      logger.error(event, fields);
    } else if (event === 'ledger.thread_recovered') {
      logger.info(event, fields);
    } else {
      logger.debug(event, fields);
    }
  };
}

/** Creates the data dir if need be (0700), locks it, and starts the ledger's thread without waiting for it. */
export async function claimDataDir(dataDir: string, logger: Logger): Promise<DataDirClaim> {
  await ensurePrivateDataDir(dataDir, logger);
  const lock = lockDataDir(dataDir);
  const ledgerPath = join(dataDir, 'ledger');
  const thread = mkdir(ledgerPath, { recursive: true, mode: 0o700 }).then(() =>
    startLedgerThread({ path: ledgerPath, onEvent: ledgerEventLogger(logger) }),
  );
  // Awaited by whoever uses the thread; until then a failed start must not count as unhandled.
  thread.catch(() => {});
  let released: Promise<void> | undefined;
  const release = async (): Promise<void> => {
    try {
      await (await thread.catch(() => undefined))?.close();
    } finally {
      lock.release();
    }
  };
  return {
    ledgerPath,
    thread,
    release: () => {
      released ??= release();
      return released;
    },
  };
}
