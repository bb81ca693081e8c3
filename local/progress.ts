import cliProgress from 'cli-progress';
import type { ObjectStore, StagedUpload } from '../shared/store/types.ts';
import type { Logger } from './runtime/log.ts';
import { formatBytes } from './status/render.ts';

export interface Transfer {
  /** Bytes so far, and the total once known. */
  advance(bytes: number, total?: number): void;
  end(outcome: 'downloaded' | 'discarded'): void;
}

export interface TransferTracker {
  begin(label: string): Transfer;
}

/**
 * The terminal: on a TTY, one progress bar per running transfer with log lines printed above them; otherwise
 * (journald, a pipe, CI) no bars, only structured log lines a machine can read.
 */
export interface Terminal {
  tracker: TransferTracker;
  /** Print one finished line without tearing the bars. */
  writeLine(line: string): void;
  stop(): void;
}

const progressLogIntervalMs = 5000;

interface TerminalOptions {
  tty: boolean;
  stream: NodeJS.WriteStream;
  logger: () => Logger;
}

export function createTerminal(options: TerminalOptions): Terminal {
  return options.tty ? barsTerminal(options) : logTerminal(options);
}

/** No TTY: structured log lines only, progress at most every `progressLogIntervalMs`. */
function logTerminal(options: TerminalOptions): Terminal {
  return {
    writeLine: (line) => {
      options.stream.write(`${line}\n`);
    },
    tracker: {
      begin(label) {
        const started = Date.now();
        let lastLog = started;
        let bytes = 0;
        let total: number | undefined;
        options.logger().info('transfer.started', { artifact: label });
        return {
          advance(now, knownTotal) {
            bytes = now;
            total = knownTotal ?? total;
            if (Date.now() - lastLog >= progressLogIntervalMs) {
              lastLog = Date.now();
              options.logger().info('transfer.progress', { artifact: label, bytes, total });
            }
          },
          end(outcome) {
            const seconds = Math.max(0.001, (Date.now() - started) / 1000);
            options.logger().info(`transfer.${outcome}`, {
              artifact: label,
              bytes,
              seconds: Number(seconds.toFixed(3)),
              mbPerSecond: Number((bytes / 1e6 / seconds).toFixed(1)),
            });
          },
        };
      },
    },
    stop: () => {},
  };
}

/** A TTY: one bar per running transfer, lines printed above the bars. */
function barsTerminal(options: TerminalOptions): Terminal {
  const bars = new cliProgress.MultiBar(
    {
      stream: options.stream,
      clearOnComplete: true,
      hideCursor: true,
      format: ' {label} |{bar}| {done} / {size}',
      barsize: 30,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  let active = 0;
  return {
    writeLine(line) {
      if (active > 0) bars.log(`${line}\n`);
      else options.stream.write(`${line}\n`);
    },
    tracker: {
      begin(label) {
        active++;
        const bar = bars.create(1, 0, { label: label.padEnd(48).slice(0, 48), done: '0 B', size: '?' });
        let ended = false;
        return {
          advance(bytes, total) {
            bar.setTotal(Math.max(total ?? bytes, 1));
            bar.update(bytes, {
              done: formatBytes(bytes),
              size: total === undefined ? '?' : formatBytes(total),
            });
          },
          end() {
            if (ended) return;
            ended = true;
            active--;
            bars.remove(bar);
            if (active === 0) bars.stop();
          },
        };
      },
    },
    stop: () => bars.stop(),
  };
}

export class TransferAbortedError extends Error {
  constructor(key: string) {
    super(`transfer of ${key} aborted: the runner is shutting down`);
    this.name = 'AbortError';
  }
}

/**
 * The store as one job sees it: once `signal` aborts (shutdown), the next staged write, the commit or a
 * small put throws, so the core aborts its staged upload and nothing half-written is ever committed. This
 * holds whatever the mirror core itself does with signals.
 */
export function abortableStore(store: ObjectStore, signal: AbortSignal): ObjectStore {
  const refuse = (key: string) => {
    if (signal.aborted) throw new TransferAbortedError(key);
  };
  return {
    get: (key) => store.get(key),
    getStream: (key, range) => store.getStream(key, range),
    head: (key) => store.head(key),
    list: (prefix) => store.list(prefix),
    delete: (key) => store.delete(key),
    async put(key, body, putOptions) {
      refuse(key);
      await store.put(key, body, putOptions);
    },
    async beginUpload(key, uploadOptions) {
      refuse(key);
      const upload = await store.beginUpload(key, uploadOptions);
      const wrapped: StagedUpload = {
        get bytesWritten() {
          return upload.bytesWritten;
        },
        async write(chunk) {
          refuse(key);
          await upload.write(chunk);
        },
        async commit() {
          refuse(key);
          await upload.commit();
        },
        abort: () => upload.abort(),
      };
      return wrapped;
    },
  };
}
