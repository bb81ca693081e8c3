import { statfs } from 'node:fs/promises';
import { describeError } from '../../shared/errors.ts';
import type { Logger } from './log.ts';

const MiB = 1024 * 1024;

/**
 * Space back above the threshold by this fraction before mirroring resumes, so a transfer that frees its
 * staged file on failure does not flip the guard on and off with every retry.
 */
export const resumeHeadroom = 0.25;

export interface DiskSpace {
  freeBytes: number;
  totalBytes: number;
}

export interface DiskGuardOptions {
  /** A folder on the filesystem to watch: the data dir (ledger, configs, local mirror). */
  path: string;
  /** Mirroring pauses below this; 0 turns the guard off. */
  minFreeMiB: number;
  checkEveryMs?: number;
  logger: Logger;
  /** Free space of the filesystem holding `path`; the default asks the kernel (statfs). */
  measure?: (path: string) => Promise<DiskSpace>;
}

export interface DiskGuardState {
  paused: boolean;
  minFreeMiB: number;
  freeMiB?: number;
  /** When the guard last paused mirroring. */
  pausedAt?: string;
}

export interface DiskGuard {
  readonly paused: boolean;
  state(): DiskGuardState;
  /** Measure now (also done on a timer); resolves once paused or resumed accordingly. */
  check(): Promise<void>;
  /** Resolves when mirroring may go on: at once while there is room, else once space is freed or `signal` aborts. */
  whenRoomy(signal: AbortSignal): Promise<void>;
  stop(): void;
}

async function statfsSpace(path: string): Promise<DiskSpace> {
  const info = await statfs(path);
  // bavail, not bfree: blocks reserved for root are not ours to fill when running as a plain user.
  return { freeBytes: info.bavail * info.bsize, totalBytes: info.blocks * info.bsize };
}

/** Promises held until `wakeAll`, each also released by its own abort signal. */
function createWaiters(): { wait(signal: AbortSignal): Promise<void>; wakeAll(): void } {
  let waiting: Array<() => void> = [];
  return {
    wait(signal) {
      if (signal.aborted) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const wake = () => {
          signal.removeEventListener('abort', wake);
          waiting = waiting.filter((w) => w !== wake);
          resolve();
        };
        waiting.push(wake);
        signal.addEventListener('abort', wake, { once: true });
      });
    },
    wakeAll() {
      const woken = waiting;
      waiting = [];
      for (const wake of woken) wake();
    },
  };
}

/**
 * Pauses mirroring (not config serving) while the data dir's filesystem is nearly full. A full disk does
 * no lasting harm (staged files are discarded, the ledger's writes fail as transient), but a mirror that
 * keeps downloading into one only retries in a loop and starves the ledger and the config store of the
 * last free blocks. `mirror.paused_low_disk` and `mirror.resumed` are the events to alert on.
 */
export function startDiskGuard(options: DiskGuardOptions): DiskGuard {
  const measure = options.measure ?? statfsSpace;
  const minBytes = options.minFreeMiB * MiB;
  const resumeBytes = minBytes * (1 + resumeHeadroom);
  let paused = false;
  let pausedAt: string | undefined;
  let freeMiB: number | undefined;
  const waiters = createWaiters();
  let measureFailed = false;

  const check = async (): Promise<void> => {
    if (options.minFreeMiB === 0) return;
    let space: DiskSpace;
    try {
      space = await measure(options.path);
      measureFailed = false;
    } catch (error) {
      if (!measureFailed) {
        options.logger.warn('disk.check_failed', { path: options.path, cause: describeError(error) });
      }
      measureFailed = true;
      return;
    }
    freeMiB = Math.floor(space.freeBytes / MiB);
    if (!paused && space.freeBytes < minBytes) {
      paused = true;
      pausedAt = new Date().toISOString();
      options.logger.warn('mirror.paused_low_disk', {
        path: options.path,
        freeMiB,
        minFreeMiB: options.minFreeMiB,
        resumesAtMiB: Math.ceil(resumeBytes / MiB),
        action: 'free space on this filesystem (or lower worker.minFreeDiskMiB); mirroring resumes by itself',
      });
    } else if (paused && space.freeBytes >= resumeBytes) {
      paused = false;
      options.logger.info('mirror.resumed', { path: options.path, freeMiB, pausedSince: pausedAt });
      pausedAt = undefined;
      waiters.wakeAll();
    }
  };

  const every = options.checkEveryMs ?? 5000;
  let running: Promise<void> = Promise.resolve();
  const timer =
    options.minFreeMiB === 0
      ? undefined
      : setInterval(() => {
          running = running.then(check);
        }, every);
  timer?.unref();

  return {
    get paused() {
      return paused;
    },
    state: () => ({
      paused,
      minFreeMiB: options.minFreeMiB,
      ...(freeMiB === undefined ? {} : { freeMiB }),
      ...(pausedAt === undefined ? {} : { pausedAt }),
    }),
    check() {
      running = running.then(check);
      return running;
    },
    whenRoomy: (signal) => (paused ? waiters.wait(signal) : Promise.resolve()),
    stop() {
      if (timer !== undefined) clearInterval(timer);
      waiters.wakeAll();
    },
  };
}
