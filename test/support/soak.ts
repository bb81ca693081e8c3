import { type ChildProcess, execFile, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createRawClient } from './raw-http-client.ts';

/**
 * Load and soak of the instance API in single-machine mode: the server is `startServe`, the same function
 * `cldist serve` runs (dynalite on disk, local config bodies, the whole distributor with its poller and
 * worker pool idle), in a child process so its RSS and heap are its own and not the load generator's.
 *
 * The generator is open-loop: request i is due at `start + i / rate` whatever happened before, and its
 * latency is measured from that due time, so a stalled server shows up as queueing in the percentiles
 * instead of as fewer requests (no coordinated omission).
 *
 * The generator is `raw-http-client.ts` beside this file, not `node:http`: a pool of keep-alive sockets
 * writing the same pre-serialised GET and skipping each response by its framing, without building request
 * or response objects, so near saturation the generator's own CPU does not set the measured latencies.
 *
 * `bench/soak.ts` runs it from the command line (`npm run soak`); `test/e2e/soak.test.ts` runs a short one.
 */

const MiB = 1024 * 1024;
const self = fileURLToPath(import.meta.url);
const execFileAsync = promisify(execFile);

export interface SoakOptions {
  durationSeconds: number;
  /** Seconds per reported interval (a minute in the real soak, shorter in CI). */
  intervalSeconds: number;
  /** Requests per second; when absent, `fraction` of the rate a saturating wrk run measures. */
  rate?: number;
  fraction: number;
  saturateSeconds: number;
  connections: number;
  /** Allowed growth of the last interval over the second: the larger of the ratio and the bytes passes. */
  growthRatio: number;
  growthBytes: number;
  /** Sent instead of the token the API issued: lets a test prove the soak notices a server refusing requests. */
  tokenOverride?: string;
  writeLine: (line: string) => void;
}

export interface MemorySample {
  rssBytes: number;
  /**
   * The anonymous part of RSS (Linux `RssAnon`): the process's own allocations. The rest is file pages
   * mapped in, such as dynalite's LevelDB tables, which grow with the audit data and the kernel can drop.
   */
  rssAnonBytes?: number;
  /** Heap used after a full GC in the server, so garbage awaiting collection does not read as a leak. */
  heapUsedBytes: number;
}

export interface IntervalReport extends MemorySample {
  index: number;
  requests: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface SaturationReport {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  socketErrors: number;
}

export interface SoakReport {
  saturation?: SaturationReport;
  rate: number;
  scheduled: number;
  completed: number;
  errors: number;
  /** The first few distinct error descriptions, to say what failed without flooding the output. */
  errorSamples: string[];
  serverInternalErrors: number;
  intervals: IntervalReport[];
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  memoryBaseline: MemorySample;
  memoryFinal: MemorySample;
  failures: string[];
}

type ToServer = { kind: 'memory' } | { kind: 'close' };
type FromServer =
  | { kind: 'ready'; url: string; adminToken: string }
  | ({ kind: 'memory'; internalErrors: number } & MemorySample)
  | { kind: 'failed'; message: string };

function readProcStatus(): string {
  try {
    return readFileSync('/proc/self/status', 'utf8');
  } catch {
    return '';
  }
}

async function serverChild(dataDir: string): Promise<void> {
  const [{ startServe }, { createLogger }, { parseConfig }] = await Promise.all([
    import('../../local/serve/index.ts'),
    import('../../local/runtime/log.ts'),
    import('../../shared/config.ts'),
  ]);
  const send = (message: FromServer) => process.send?.(message);
  let internalErrors = 0;
  const logger = createLogger({
    format: 'json',
    write: () => {},
    minLevel: 'warn',
    onRecord: (record) => {
      if (record.event === 'api.internal_error') internalErrors++;
    },
  });
  const config = parseConfig({ channels: [{ name: 'soak', baseUrl: 'http://127.0.0.1:9' }] }, 'soak config');
  try {
    const handle = await startServe({
      config,
      dataDir,
      host: '127.0.0.1',
      port: 0,
      concurrency: 1,
      logger,
      tracker: { begin: () => ({ advance: () => {}, end: () => {} }) },
      pollEveryMs: 24 * 3600_000,
    });
    process.on('message', (message: ToServer) => {
      if (message.kind === 'memory') {
        globalThis.gc?.();
        const usage = process.memoryUsage();
        const anon = /^RssAnon:\s+(\d+) kB$/m.exec(readProcStatus())?.[1];
        send({
          kind: 'memory',
          rssBytes: usage.rss,
          ...(anon === undefined ? {} : { rssAnonBytes: Number(anon) * 1024 }),
          heapUsedBytes: usage.heapUsed,
          internalErrors,
        });
      } else {
        void handle.close().finally(() => process.exit(0));
      }
    });
    process.on('disconnect', () => void handle.close().finally(() => process.exit(0)));
    send({ kind: 'ready', url: handle.url, adminToken: handle.adminToken });
  } catch (error) {
    send({ kind: 'failed', message: error instanceof Error ? error.message : String(error) });
    process.exit(1);
  }
}

interface ServerProcess {
  url: string;
  adminToken: string;
  memory(): Promise<MemorySample & { internalErrors: number }>;
  close(): Promise<void>;
}

async function startServerProcess(dataDir: string): Promise<ServerProcess> {
  const child: ChildProcess = fork(self, ['--server', dataDir], {
    execArgv: ['--expose-gc', '--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const next = () =>
    new Promise<FromServer>((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`soak server exited with ${code}`));
      child.once('exit', onExit);
      child.once('message', (message: FromServer) => {
        child.off('exit', onExit);
        resolve(message);
      });
    });
  const ready = await next();
  if (ready.kind !== 'ready') {
    child.kill();
    throw new Error(`soak server did not start: ${ready.kind === 'failed' ? ready.message : ready.kind}`);
  }
  return {
    url: ready.url,
    adminToken: ready.adminToken,
    memory: async () => {
      const reply = next();
      child.send({ kind: 'memory' } satisfies ToServer);
      const message = await reply;
      if (message.kind !== 'memory')
        throw new Error(`unexpected reply from the soak server: ${message.kind}`);
      return message;
    },
    close: async () => {
      if (child.exitCode !== null) return;
      child.send({ kind: 'close' } satisfies ToServer);
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

function toMs(value: string, unit: string): number {
  const n = Number(value);
  return unit === 'us' ? n / 1000 : unit === 's' ? n * 1000 : n;
}

async function saturate(
  url: string,
  headers: Record<string, string>,
  seconds: number,
  connections: number,
): Promise<SaturationReport> {
  const args = ['-t2', `-c${connections}`, `-d${seconds}s`, '--latency'];
  for (const [name, value] of Object.entries(headers)) args.push('-H', `${name}: ${value}`);
  args.push(url);
  const { stdout } = await execFileAsync('wrk', args);
  const latency = (p: string) => {
    const match = new RegExp(`^\\s+${p}%\\s+([0-9.]+)(us|ms|s)\\s*$`, 'm').exec(stdout);
    if (match === null) throw new Error(`no ${p}% line in wrk output:\n${stdout}`);
    return toMs(match[1] ?? '', match[2] ?? '');
  };
  const rps = /^Requests\/sec:\s+([0-9.]+)/m.exec(stdout);
  if (rps === null) throw new Error(`no Requests/sec line in wrk output:\n${stdout}`);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  return {
    requestsPerSecond: Number(rps[1]),
    p50Ms: latency('50'),
    p99Ms: latency('99'),
    non2xx: Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)?.[1] ?? 0),
    socketErrors: socket === null ? 0 : socket.slice(1).reduce((sum, n) => sum + Number(n), 0),
  };
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

class LatencyLog {
  private values = new Float64Array(1024);
  length = 0;
  push(ms: number): void {
    if (this.length === this.values.length) {
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.length++] = ms;
  }
  sorted(): Float64Array {
    return this.values.slice(0, this.length).sort();
  }
}

const ignitionConfig = {
  ignition: { version: '3.4.0' },
  storage: { files: [{ path: '/etc/hostname', mode: 420, contents: { source: 'data:,soak-node' } }] },
  passwd: { users: [{ name: 'core', sshAuthorizedKeys: [`ssh-ed25519 ${'A'.repeat(68)} soak`] }] },
};

/**
 * Exported so CI can run a short soak in-process at a fixed rate; the command line adds the saturating
 * measurement and the 10-minute default. Failures are returned, not thrown, so a caller sees every one.
 */
export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const out = options.writeLine;
  const dataDir = await mkdtemp(join(tmpdir(), 'cldist-soak-'));
  const server = await startServerProcess(dataDir);
  try {
    const put = await fetch(`${server.url}/v1/instances/soak-node`, {
      method: 'PUT',
      headers: { Authorization: `Bearer ${server.adminToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ ignition: ignitionConfig }),
    });
    if (put.status !== 200 && put.status !== 201) {
      throw new Error(`registering the soak instance failed: HTTP ${put.status} ${await put.text()}`);
    }
    const { token } = (await put.json()) as { token: string };
    const target = new URL(`${server.url}/v1/instances/soak-node/ignition`);
    const headers = {
      Accept: 'application/vnd.coreos.ignition+json;version=3.4.0, */*;q=0.1',
      Authorization: `Bearer ${options.tokenOverride ?? token}`,
    };

    let saturation: SaturationReport | undefined;
    let rate = options.rate;
    if (rate === undefined) {
      out(
        `saturating: wrk -t2 -c${options.connections} -d${options.saturateSeconds}s --latency ${target.href}`,
      );
      saturation = await saturate(target.href, headers, options.saturateSeconds, options.connections);
      out(
        `max throughput ${saturation.requestsPerSecond.toFixed(0)} req/s, p50 ${saturation.p50Ms.toFixed(2)} ms, p99 ${saturation.p99Ms.toFixed(2)} ms, non-2xx ${saturation.non2xx}, socket errors ${saturation.socketErrors}`,
      );
      rate = Math.round(saturation.requestsPerSecond * options.fraction);
    }
    if (!(rate > 0)) throw new Error(`the soak rate must be positive, got ${rate}`);

    const intervalCount = Math.ceil(options.durationSeconds / options.intervalSeconds);
    const scheduled = Math.round(rate * options.durationSeconds);
    out(
      `soak: ${rate} req/s for ${options.durationSeconds} s (${scheduled} requests), open loop on up to ${options.connections} keep-alive connections, a line every ${options.intervalSeconds} s`,
    );
    out(
      `${'interval'.padEnd(8)} ${'requests'.padStart(9)} ${'errors'.padStart(7)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'max ms'.padStart(8)} ${'RSS MiB'.padStart(8)} ${'anon MiB'.padStart(9)} ${'heap MiB'.padStart(9)}`,
    );

    /**
     * The server drops a connection idle for 5 s (Node's keepAliveTimeout). A request sent on it in that
     * instant is reset, a race of the client, not a server fault: the client replaces a socket idle for
     * 2 s rather than reuse it.
     */
    const client = createRawClient({
      url: target,
      headers,
      connections: options.connections,
      idleTimeoutMs: 2000,
    });
    const all = new LatencyLog();
    const errorSamples = new Set<string>();
    let current = new LatencyLog();
    let currentErrors = 0;
    let completed = 0;
    let errors = 0;
    let issued = 0;
    const intervals: IntervalReport[] = [];
    const start = performance.now() + 50;
    const intervalMs = options.intervalSeconds * 1000;
    const perMs = rate / 1000;

    /**
     * A count, not a set of promises: racing thousands of pending promises on every completion while a
     * backlog drains is quadratic, and stalled the generator once it had fallen behind.
     */
    let inFlight = 0;
    let drained: (() => void) | undefined;
    /** Set once the drain gives up: the client then resolves the rest with `client closed`, not counted. */
    let abandoned = false;
    const fire = (due: number) => {
      inFlight++;
      void client.send().then((result) => {
        if (abandoned) return;
        const latency = performance.now() - due;
        all.push(latency);
        current.push(latency);
        completed++;
        if (result !== 200) {
          errors++;
          currentErrors++;
          if (errorSamples.size < 5) errorSamples.add(typeof result === 'number' ? `HTTP ${result}` : result);
        }
        if (--inFlight === 0) drained?.();
      });
    };

    const closeInterval = async (index: number) => {
      const latencies = current.sorted();
      const requests = current.length;
      const intervalErrors = currentErrors;
      current = new LatencyLog();
      currentErrors = 0;
      const memory = await server.memory();
      const report: IntervalReport = {
        index,
        requests,
        errors: intervalErrors,
        p50Ms: percentile(latencies, 50),
        p99Ms: percentile(latencies, 99),
        maxMs: latencies[latencies.length - 1] ?? Number.NaN,
        rssBytes: memory.rssBytes,
        ...(memory.rssAnonBytes === undefined ? {} : { rssAnonBytes: memory.rssAnonBytes }),
        heapUsedBytes: memory.heapUsedBytes,
      };
      intervals.push(report);
      out(
        `${String(index + 1).padEnd(8)} ${String(requests).padStart(9)} ${String(intervalErrors).padStart(7)} ${report.p50Ms.toFixed(2).padStart(8)} ${report.p99Ms.toFixed(2).padStart(8)} ${report.maxMs.toFixed(2).padStart(8)} ${(report.rssBytes / MiB).toFixed(1).padStart(8)} ${(report.rssAnonBytes === undefined ? '-' : (report.rssAnonBytes / MiB).toFixed(1)).padStart(9)} ${(report.heapUsedBytes / MiB).toFixed(1).padStart(9)}`,
      );
    };

    const memoryBaseline = await server.memory();
    let nextInterval = 0;
    await new Promise<void>((resolve) => {
      const tick = () => {
        const now = performance.now();
        const due = Math.min(scheduled, Math.floor((now - start) * perMs) + 1);
        while (issued < due) {
          fire(start + issued / perMs);
          issued++;
        }
        if (now - start >= (nextInterval + 1) * intervalMs && nextInterval < intervalCount - 1) {
          void closeInterval(nextInterval);
          nextInterval++;
        }
        if (issued >= scheduled) resolve();
        else setTimeout(tick, 1);
      };
      setTimeout(tick, Math.max(0, start - performance.now()));
    });
    if (inFlight > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 30_000);
        drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    abandoned = true;
    const lost = inFlight;
    if (lost > 0) {
      errors += lost;
      currentErrors += lost;
      errorSamples.add(`${lost} request(s) unanswered 30 s after the last was due`);
    }
    while (intervals.length < nextInterval) await new Promise((resolve) => setTimeout(resolve, 10));
    await closeInterval(nextInterval);
    await client.close();

    const final = await server.memory();
    const sortedAll = all.sorted();
    const failures: string[] = [];
    if (errors > 0) failures.push(`${errors} error(s): ${[...errorSamples].join('; ')}`);
    if (final.internalErrors > 0) failures.push(`${final.internalErrors} api.internal_error log line(s)`);
    if (completed + lost !== scheduled) failures.push(`${completed} of ${scheduled} requests completed`);
    const reference = intervals[Math.min(1, intervals.length - 1)];
    const last = intervals.at(-1);
    if (reference !== undefined && last !== undefined) {
      const allowed = (base: number) => Math.max(base * options.growthRatio, base + options.growthBytes);
      if (last.rssBytes > allowed(reference.rssBytes)) {
        failures.push(
          `RSS grew from ${(reference.rssBytes / MiB).toFixed(1)} MiB (interval ${reference.index + 1}) to ${(last.rssBytes / MiB).toFixed(1)} MiB (last)`,
        );
      }
      if (
        last.rssAnonBytes !== undefined &&
        reference.rssAnonBytes !== undefined &&
        last.rssAnonBytes > allowed(reference.rssAnonBytes)
      ) {
        failures.push(
          `anonymous RSS grew from ${(reference.rssAnonBytes / MiB).toFixed(1)} MiB (interval ${reference.index + 1}) to ${(last.rssAnonBytes / MiB).toFixed(1)} MiB (last)`,
        );
      }
      if (last.heapUsedBytes > allowed(reference.heapUsedBytes)) {
        failures.push(
          `heap grew from ${(reference.heapUsedBytes / MiB).toFixed(1)} MiB (interval ${reference.index + 1}) to ${(last.heapUsedBytes / MiB).toFixed(1)} MiB (last)`,
        );
      }
    }
    return {
      saturation,
      rate,
      scheduled,
      completed,
      errors,
      errorSamples: [...errorSamples],
      serverInternalErrors: final.internalErrors,
      intervals,
      p50Ms: percentile(sortedAll, 50),
      p99Ms: percentile(sortedAll, 99),
      maxMs: sortedAll[sortedAll.length - 1] ?? Number.NaN,
      memoryBaseline,
      memoryFinal: final,
      failures,
    };
  } finally {
    await server.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}
const serverIndex = process.argv.indexOf('--server');
if (serverIndex >= 0) await serverChild(process.argv[serverIndex + 1] ?? '');
