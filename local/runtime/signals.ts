import type { Logger } from './log.ts';

export interface ShutdownSignalOptions {
  logger: Logger;
  /** Where the user-facing notes go; default stderr. */
  write?: (line: string) => void;
  /** Ends the process; default `process.exit`. `exit` listeners run, so the data-dir lock file is removed. */
  exit?: (code: number) => void;
  /** Where the signals come from; default `process`. */
  source?: Pick<NodeJS.Process, 'on' | 'off'>;
}

export interface ShutdownSignals {
  /** Resolves with the first SIGINT or SIGTERM. */
  first: Promise<NodeJS.Signals>;
  /** Stop listening (after a clean shutdown). */
  dispose(): void;
}

const exitCodes: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143 };

/**
 * The first SIGINT or SIGTERM starts a graceful shutdown. A second one during it (systemd and container
 * runtimes repeat SIGTERM; people press Ctrl-C twice) only says that shutdown is under way, since killing
 * the process mid-way is what it would otherwise do. A third forces the exit: nothing half-written
 * becomes visible even then (staged files are never renamed into place unverified, and LevelDB recovers
 * from its log), and the exit still removes `serve.pid`.
 */
export function watchShutdownSignals(options: ShutdownSignalOptions): ShutdownSignals {
  const source = options.source ?? process;
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let count = 0;
  let resolveFirst: (signal: NodeJS.Signals) => void = () => {};
  const first = new Promise<NodeJS.Signals>((resolve) => {
    resolveFirst = resolve;
  });
  const onSignal = (signal: NodeJS.Signals) => {
    count++;
    if (count === 1) {
      resolveFirst(signal);
    } else if (count === 2) {
      options.logger.warn('shutdown.already_in_progress', { signal });
      write(
        `cldist: already shutting down (waiting for transfers and the stand-ins to stop); send ${signal} once more to exit at once`,
      );
    } else {
      options.logger.warn('shutdown.forced', { signal });
      write(`cldist: ${signal} again: exiting now without waiting; nothing unverified becomes visible`);
      exit(exitCodes[signal] ?? 1);
    }
  };
  source.on('SIGINT', onSignal);
  source.on('SIGTERM', onSignal);
  return {
    first,
    dispose() {
      source.off('SIGINT', onSignal);
      source.off('SIGTERM', onSignal);
    },
  };
}
