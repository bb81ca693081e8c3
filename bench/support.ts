import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { projectRoot } from '../shared/config.ts';

/** Medians, not means: these machines are noisy, and one stalled round should not move a figure. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? Number.NaN)
    : ((sorted[middle - 1] ?? Number.NaN) + (sorted[middle] ?? Number.NaN)) / 2;
}

/** GNU time (`/usr/bin/time -f %M`) prints the peak RSS in KiB as the last line of stderr. */
export function peakMiB(stderr: string): number {
  return Number(stderr.trim().split('\n').at(-1) ?? '') / 1024;
}

/**
 * GNU time with `-f '%M %U %S'`: the peak RSS in KiB and the user and system CPU seconds, as the last line
 * of stderr. CPU seconds say what a run costs even when other work on the machine stretches its wall time.
 */
export function peakAndCpu(stderr: string): { rss: number; cpu: number } {
  const [kib, user, system] = (stderr.trim().split('\n').at(-1) ?? '').split(' ').map(Number);
  return { rss: (kib ?? Number.NaN) / 1024, cpu: (user ?? Number.NaN) + (system ?? Number.NaN) };
}

/** fauxqs in its own process, so the S3 side does not share an event loop with what is measured. */
export async function startFauxqsProcess(): Promise<{ endpoint: string; process: ChildProcess }> {
  const script =
    "const { startFauxqs } = await import('fauxqs'); const f = await startFauxqs({ port: 0, host: '127.0.0.1', logger: false }); console.log(f.port);";
  const proc = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<string>((resolve, reject) => {
    proc.stdout?.once('data', (data: Buffer) => resolve(data.toString().trim()));
    proc.once('exit', (code) => reject(new Error(`fauxqs exited with ${code}`)));
  });
  return { endpoint: `http://127.0.0.1:${port}`, process: proc };
}

/** The arguments of `cldist mirror --once` of one artifact of the stable channel, as JSON, into `dataDir`. */
export function mirrorOnceArgs(run: {
  originUrl: string;
  board: string;
  artifact: string;
  keyFile: string;
  dataDir: string;
}): string[] {
  return [
    ...['mirror', '--once', '--origin', `${run.originUrl}/{channel}`, '--channel', 'stable'],
    ...['--board', run.board, '--artifact', run.artifact, '--keyring', run.keyFile],
    ...['--data-dir', run.dataDir, '--json'],
  ];
}

/** A finished command: its exit code (1 if it died without one), its output, and its wall time. */
export interface CommandRun {
  code: number;
  stdout: string;
  stderr: string;
  seconds: number;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Killed after this long (execFile's `timeout`); none if unset. */
  timeoutMs?: number;
}

/**
 * Runs a command to its end and times it. A failure is a result, not a throw, so a benchmark can report
 * which peer failed and how.
 */
export function runCommand(command: string, args: string[], options: RunOptions = {}): Promise<CommandRun> {
  const started = performance.now();
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      {
        encoding: 'utf8',
        maxBuffer: 16 * 1024 * 1024,
        env: options.env ?? process.env,
        ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
        ...(options.timeoutMs === undefined ? {} : { timeout: options.timeoutMs }),
      },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, stderr, seconds: (performance.now() - started) / 1000 });
      },
    );
  });
}

/** What one wrk run measured: throughput, latency percentiles and the answers that were not 2xx or 3xx. */
export interface WrkFigures {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
}

export interface WrkRun {
  connections: number;
  seconds: number;
  headers?: string[];
  /** A wrk Lua script (pacing, or a request per call). */
  script?: string;
}

function toMs(value: string, unit: string): number {
  const n = Number(value);
  return unit === 'us' ? n / 1000 : unit === 's' ? n * 1000 : n;
}

/** One wrk run (two threads, `--latency`) against `url`, read from wrk's text report. */
export async function wrk(url: string, run: WrkRun): Promise<WrkFigures> {
  const args = [
    '-t2',
    `-c${run.connections}`,
    `-d${run.seconds}s`,
    '--latency',
    ...(run.headers ?? []).flatMap((h) => ['-H', h]),
    ...(run.script === undefined ? [] : ['-s', run.script]),
    url,
  ];
  const { code, stdout, stderr } = await runCommand('wrk', args);
  if (code !== 0) throw new Error(`wrk exited with ${code}: ${stderr}`);
  const latency = (p: string) => {
    const match = new RegExp(`^\\s+${p}%\\s+([0-9.]+)(us|ms|s)\\s*$`, 'm').exec(stdout);
    if (match === null) throw new Error(`no ${p}% line in wrk output:\n${stdout}`);
    return toMs(match[1] ?? '', match[2] ?? '');
  };
  return {
    requestsPerSecond: Number(/^Requests\/sec:\s+([0-9.]+)/m.exec(stdout)?.[1] ?? Number.NaN),
    p50Ms: latency('50'),
    p99Ms: latency('99'),
    non2xx: Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)?.[1] ?? 0),
  };
}

/** A running `cldist serve` in its own process, on its own data dir. */
export interface ServeProcess {
  url: string;
  /** The folder that holds the config and the data dir; removed by `stop`. */
  dir: string;
  /** The admin token `serve` made for its data dir. */
  adminToken(): Promise<string>;
  /** Stops the server (SIGTERM, SIGKILL after 15 s) and removes its folder. */
  stop(): Promise<void>;
}

/** A 3.3.0 config with one file, as fleets register them; each instance's hostname differs. */
export const oneFileConfig = (id: string) => ({
  ignition: { version: '3.3.0' },
  storage: { files: [{ path: '/etc/hostname', mode: 420, contents: { source: `data:,${id}` } }] },
});

/**
 * Starts `node argv… --log-format json` (a `cldist serve` command line) and resolves with its URL once it
 * logs `http.listening`; rejects if it exits first.
 */
export async function spawnServe(
  argv: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [...argv, '--log-format', 'json'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env },
  });
  const url = await new Promise<string>((resolve, reject) => {
    let buffered = '';
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      for (const line of buffered.split('\n').slice(0, -1)) {
        const record = JSON.parse(line) as { event?: string; url?: string };
        if (record.event === 'http.listening' && typeof record.url === 'string') {
          child.stdout?.off('data', onData);
          child.stdout?.resume();
          resolve(record.url);
        }
      }
      buffered = buffered.slice(buffered.lastIndexOf('\n') + 1);
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`cldist serve exited with ${code} before listening`)));
  });
  return { child, url };
}

/**
 * `cldist serve` through `bin/cldist.js`, in its own process so the load client does not share its event
 * loop, and idle but for the requests measured: its origin is unreachable on purpose, so the poller fails
 * once at start and then sleeps for a day. `extraArgs` are added to the command line.
 */
export async function startIdleServe(prefix: string, extraArgs: string[] = []): Promise<ServeProcess> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const configFile = join(dir, 'cldist.config.json');
  await writeFile(
    configFile,
    JSON.stringify({ channels: [{ name: 'stable', baseUrl: 'http://127.0.0.1:9' }] }, null, 2),
  );
  const dataDir = join(dir, 'data');
  const { child, url } = await spawnServe([
    join(projectRoot, 'bin/cldist.js'),
    ...['serve', '--config', configFile, '--data-dir', dataDir, '--port', '0', '--poll-seconds', '86400'],
    ...extraArgs,
  ]);
  return {
    url,
    dir,
    adminToken: async () => (await readFile(join(dataDir, 'admin-token'), 'utf8')).trim(),
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      if (child.exitCode === null) await new Promise((resolve) => child.once('exit', resolve));
      clearTimeout(timer);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
