import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { projectRoot } from '../../shared/config.ts';
import {
  type ItemAnswer,
  type ItemWrite,
  itemError,
  type LedgerCalls,
  ledgerCallsOver,
} from './ledger-calls.ts';

/**
 * dynalite answers a LevelDB failure it does not recognise (`LEVEL_IO_ERROR … No space left on device`)
 * by throwing from a callback, which is an uncaught exception: hosted on the main thread it ends the
 * whole runner, config fetches included. Hosted on its own worker thread, the same throw ends only that
 * thread. Its sockets close with it, so every ledger call in flight fails with a connection error, which
 * the SDK retries and the ledger adapters turn into `TransientError` (503 to clients, a retry for the
 * mirror), the same as an unreachable DynamoDB. The thread is then started again on the same port, with
 * backoff: reopening LevelDB is also what clears its sticky background error once space is freed, and a
 * reopen that fails on a disk still full simply ends that thread too, until the disk has room.
 *
 * The thread runs plain JavaScript (no TypeScript loader in workers): dynalite with TransactWriteItems
 * added (`local/dynalite-transactions.cjs`), loaded by its path under the project root, so it is the same
 * file whether the CLI runs from its sources or its bundle, whatever the working directory.
 */
const threadSource = `
const { parentPort, workerData } = require('node:worker_threads');
const { createDynalite } = require(workerData.dynalite);
const compaction = {
  ...workerData.compaction,
  onCompacted: (done) => parentPort.postMessage({ op: 'compacted', ...done }),
  onFailed: (error) => parentPort.postMessage({ op: 'compaction-failed', message: String(error?.message ?? error) }),
};
const server = createDynalite({
  path: workerData.path, createTableMs: 0, updateTableMs: 0, level: workerData.level, compaction,
});
server.once('error', (error) => {
  parentPort.postMessage({ op: 'listen-failed', code: error.code, message: String(error.message) });
});
server.listen(workerData.port, '127.0.0.1', () => {
  parentPort.postMessage({ op: 'listening', port: server.address().port });
});
const failure = (error) => ({
  name: String(error?.body?.__type ?? error?.name ?? 'Error').split('#').pop(),
  message: String(error?.body?.message ?? error?.message ?? error),
  status: typeof error?.statusCode === 'number' ? error.statusCode : undefined,
});
parentPort.on('message', (message) => {
  if (message.op === 'get' || message.op === 'write') {
    const done = message.op === 'get'
      ? server.readItem(message.table, message.key)
      : server.writeItems(message.table, message.requests).then(() => undefined);
    done.then(
      (item) => parentPort.postMessage({ op: 'item', id: message.id, item }),
      (error) => parentPort.postMessage({ op: 'item', id: message.id, error: failure(error) }),
    );
    return;
  }
  if (message.op !== 'close') return;
  server.closeAllConnections();
  server.close(() => parentPort.postMessage({ op: 'closed' }));
});
`;

/**
 * LevelDB maps each table file it keeps open into memory, and the pages that reads have touched count in
 * the process's RSS for as long as the file stays open. By default it keeps up to a thousand files open,
 * so a large ledger read at random would hold most of itself in the server's RSS. Fewer open files bound
 * that part by their number times LevelDB's file size; a read in a file not open costs reopening it.
 */
const levelOptions = { maxOpenFiles: 100 };

/**
 * When the ledger's LevelDB is compacted whole (see `local/ledger-compaction.cjs`): checked every
 * `checkMs`, once writes have settled, if the files above its deepest level are at least `minFiles` and
 * `minShare` of them all.
 */
export interface LedgerCompactionOptions {
  checkMs: number;
  minFiles: number;
  minShare: number;
}

/**
 * The files above the deepest level are what a random read reopens; with the open-file bound above,
 * a few dozen of them already cost more than rewriting the ledger once.
 */
const defaultCompaction: LedgerCompactionOptions = { checkMs: 5000, minFiles: 32, minShare: 0.1 };

const dynalitePath = join(projectRoot, 'local', 'dynalite-transactions.cjs');

/** `streak`: crashes since the thread last stayed up for `stableAfterMs`. */
export type LedgerThreadEvent =
  | { event: 'ledger.thread_crashed'; cause: string; code?: string; restartInMs: number; streak: number }
  | { event: 'ledger.thread_restarted'; streak: number }
  | { event: 'ledger.thread_recovered'; crashes: number }
  | { event: 'ledger.compacted'; ms: number; filesBefore: number[]; filesAfter: number[] }
  | { event: 'ledger.compaction_failed'; cause: string };

export interface LedgerThreadOptions {
  /** Folder for dynalite's LevelDB files. */
  path: string;
  /** What happened to the thread, for the runner's log. */
  onEvent?: (event: LedgerThreadEvent) => void;
  /** First delay before a restart, doubling per consecutive crash up to `maxRestartDelayMs`. */
  restartDelayMs?: number;
  maxRestartDelayMs?: number;
  /** Up this long without a crash, the thread counts as recovered and the backoff starts again; default 10 s. */
  stableAfterMs?: number;
  compaction?: LedgerCompactionOptions;
}

export interface LedgerThread {
  /** Stays the same across restarts, so the clients built once keep working. */
  endpoint: string;
  port: number;
  /** Crashes since start; tests and the status page read it. */
  readonly crashes: number;
  /** Resolves once the thread answers on its port again (immediately if it is up). */
  ready(): Promise<void>;
  /**
   * GetItem (consistent, whole item) answered by the thread's dynalite without HTTP: native key and
   * item, as the document client's. A failure carries `name` and `$metadata.httpStatusCode` as the
   * SDK's would, none if the thread is down or dies meanwhile, so callers classify it the same way.
   */
  getItem(table: string, key: Record<string, unknown>): Promise<Record<string, unknown> | undefined>;
  /** BatchWriteItem answered by the thread's dynalite without HTTP, failing as `getItem` does. */
  writeItems(table: string, requests: ItemWrite[]): Promise<void>;
  close(): Promise<void>;
}

interface Started {
  worker: Worker;
  port: number;
  calls: LedgerCalls;
}

type ThreadMessage =
  | ItemAnswer
  | { op: 'listening'; port: number }
  | { op: 'listen-failed'; code?: string; message: string }
  | { op: 'closed' }
  | { op: 'compacted'; ms: number; filesBefore: number[]; filesAfter: number[] }
  | { op: 'compaction-failed'; message: string };

function spawn(options: LedgerThreadOptions, port: number): Promise<Started> {
  const compaction = options.compaction ?? defaultCompaction;
  const worker = new Worker(threadSource, {
    eval: true,
    workerData: { dynalite: dynalitePath, path: options.path, port, level: levelOptions, compaction },
  });
  worker.on('message', (message: ThreadMessage) => {
    if (message.op === 'compacted') {
      const { ms, filesBefore, filesAfter } = message;
      options.onEvent?.({ event: 'ledger.compacted', ms, filesBefore, filesAfter });
    } else if (message.op === 'compaction-failed') {
      options.onEvent?.({ event: 'ledger.compaction_failed', cause: message.message });
    }
  });
  const calls = ledgerCallsOver(worker);
  return new Promise((resolve, reject) => {
    const onMessage = (message: ThreadMessage) => {
      if (message.op === 'listening') {
        cleanup();
        resolve({ worker, port: message.port, calls });
      } else if (message.op === 'listen-failed') {
        cleanup();
        void worker.terminate();
        reject(
          Object.assign(new Error(`ledger thread cannot listen: ${message.message}`), { code: message.code }),
        );
      }
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    const cleanup = () => {
      worker.off('message', onMessage);
      worker.off('error', onError);
    };
    worker.on('message', onMessage);
    worker.once('error', onError);
  });
}

function restarting(): Error {
  return itemError({ name: 'LedgerThreadDown', message: 'the ledger thread is restarting' });
}

function describe(error: unknown): { cause: string; code?: string } {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return { cause: error.message, ...(typeof code === 'string' ? { code } : {}) };
  }
  return { cause: String(error) };
}

/** Let dynalite close LevelDB cleanly (at most 30 s), then end the thread. */
async function stopThread(worker: Worker): Promise<void> {
  const closed = new Promise<void>((resolveClosed) => {
    const timer = setTimeout(resolveClosed, 30_000);
    const done = () => {
      clearTimeout(timer);
      resolveClosed();
    };
    worker.on('message', (message: ThreadMessage) => {
      if (message.op === 'closed') done();
    });
    worker.once('exit', done);
  });
  worker.postMessage({ op: 'close' });
  await closed;
  await worker.terminate();
}

/** Start dynalite on its own thread, listening on loopback, restarted whenever the thread dies. */
export async function startLedgerThread(options: LedgerThreadOptions): Promise<LedgerThread> {
  const baseDelay = options.restartDelayMs ?? 200;
  const maxDelay = options.maxRestartDelayMs ?? 5000;
  const stableAfterMs = options.stableAfterMs ?? 10_000;
  const first = await spawn(options, 0);
  const port = first.port;
  let current: Started | undefined = first;
  let crashes = 0;
  /** Crashes since the thread last stayed up for `stableAfterMs`: a disk still full crashes it again at once. */
  let streak = 0;
  let closing = false;
  let up: Promise<void> = Promise.resolve();
  let restartTimer: NodeJS.Timeout | undefined;
  let stableTimer: NodeJS.Timeout | undefined;

  const crashed = (error: unknown): number => {
    crashes++;
    streak++;
    clearTimeout(stableTimer);
    const restartInMs = Math.min(maxDelay, baseDelay * 2 ** (streak - 1));
    options.onEvent?.({ event: 'ledger.thread_crashed', ...describe(error), restartInMs, streak });
    return restartInMs;
  };
  const started = (next: Started) => {
    current = next;
    next.worker.once('error', onThreadError);
    options.onEvent?.({ event: 'ledger.thread_restarted', streak });
    stableTimer = setTimeout(() => {
      options.onEvent?.({ event: 'ledger.thread_recovered', crashes: streak });
      streak = 0;
    }, stableAfterMs);
    stableTimer.unref();
  };
  const restart = (resolveUp: () => void) => {
    restartTimer = undefined;
    if (closing) return resolveUp();
    spawn(options, port).then(
      (next) => {
        if (closing) {
          void next.worker.terminate();
        } else {
          started(next);
        }
        resolveUp();
      },
      (error: unknown) => {
        restartTimer = setTimeout(() => restart(resolveUp), crashed(error));
      },
    );
  };
  function onThreadError(error: Error): void {
    current = undefined;
    if (closing) return;
    const delay = crashed(error);
    up = new Promise<void>((resolveUp) => {
      restartTimer = setTimeout(() => restart(resolveUp), delay);
    });
  }
  first.worker.once('error', onThreadError);
  const onThread = <T>(call: (calls: LedgerCalls) => Promise<T>): Promise<T> =>
    current === undefined ? Promise.reject(restarting()) : call(current.calls);

  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    get crashes() {
      return crashes;
    },
    ready: () => up,
    getItem: (table, key) => onThread((calls) => calls.read(table, key)),
    writeItems: (table, requests) => onThread((calls) => calls.write(table, requests)),
    async close() {
      closing = true;
      clearTimeout(restartTimer);
      clearTimeout(stableTimer);
      if (current !== undefined) await stopThread(current.worker);
    },
  };
}
