import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { projectRoot } from '../shared/config.ts';
import { createRawClient, type RawClient } from '../test/support/raw-http-client.ts';
import { type LoadFigures, saturate } from './load.ts';
import { readScaleResults, type ScaleResult, writeScalePlot } from './scale-plot.ts';
import { median, oneFileConfig, spawnServe } from './support.ts';

/**
 * A fleet on one machine: one `cldist serve` on a fresh data dir registers `--instances` instances through
 * the bulk route (`POST /v1/instances`, JSON lines, what `cldist instances put-many` sends), then, in the
 * same run, its config route `GET /v1/instances/{id}/ignition` is driven closed-loop over `--connections`
 * keep-alive connections in two ways: a uniformly random registered instance per request, and one hot
 * instance on every request (the peer: the same route with every cache warm). The order alternates between
 * rounds; rates and percentiles are medians over the rounds, the ratio the median of per-round ratios.
 *
 * The load generator is the raw keep-alive client (test/support/raw-http-client.ts) in this process, which
 * builds each random request's bytes as it sends them; its CPU time is printed beside the server's, so a
 * reader can see it is not what limits the rate. Memory is the server process's VmRSS and VmHWM (dynalite
 * runs on a thread in it) after start, after registration and after the GET runs; the data dir is measured
 * (`du`, allocated bytes) after an orderly shutdown, which flushes the audit queue.
 *
 *   npm run bench:scale -- [--instances 1000000] [--seconds 10] [--rounds 3] [--connections 16]
 *                          [--batch 1000] [--put-connections 4] [--json FILE] [--profile DIR] [--keep]
 *   npm run bench:scale -- --plot [--sizes 10000,100000,1000000] [--from FILE,FILE…]
 *
 * `--profile DIR` runs the server from its TypeScript sources and has it write V8 CPU profiles (`node
 * --cpu-prof`: the main thread's and the ledger thread's) there when it stops.
 *
 * `--keep` leaves the server's config and data dir in place (the path is printed) to look into afterwards.
 *
 * `--plot` runs the benchmark once per size (each on its own fresh server) and writes docs/img/scale.json,
 * docs/img/scale.svg (rates and memory against the number of instances, drawn by bench/plot.ts) and the
 * table between the `scale-table` markers in docs/benchmarks.md; `--from` draws them from saved results instead
 * (docs/img/scale.json, or the `--json` files of single runs, comma-separated).
 */

const { values: flags } = parseArgs({
  options: {
    instances: { type: 'string', default: '1000000' },
    seconds: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '16' },
    batch: { type: 'string', default: '1000' },
    'put-connections': { type: 'string', default: '4' },
    json: { type: 'string' },
    plot: { type: 'boolean', default: false },
    sizes: { type: 'string', default: '10000,100000,1000000' },
    from: { type: 'string' },
    profile: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});

function positive(name: string, value: string | undefined, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw new Error(`--${name} takes a whole number from 1 to ${max}, got ${JSON.stringify(value)}`);
  }
  return n;
}

const self = fileURLToPath(import.meta.url);
const run = promisify(execFile);
const tokenLength = 43;
const accept = 'application/vnd.coreos.ignition+json;version=3.3.0, */*;q=0.1';

interface Memory {
  rssMiB: number;
  peakMiB: number;
  /** Of the RSS, pages of files mapped into the process: LevelDB maps the table files it has open. */
  fileMiB: number;
}

async function memoryOf(pid: number): Promise<Memory> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { rssMiB: kib('VmRSS') / 1024, peakMiB: kib('VmHWM') / 1024, fileMiB: kib('RssFile') / 1024 };
}

/** User plus system CPU time of a process so far, in ms (fields 14 and 15 of /proc/pid/stat, in ticks). */
async function cpuMsOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  ticksPerSecond ??= Number((await run('getconf', ['CLK_TCK'])).stdout.trim());
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond;
}
let ticksPerSecond: number | undefined;

/**
 * The ledger checks every 5 s whether its writes have settled and a full compaction pays, so it starts
 * one after about 10 s of quiet: idle this long, the server has either compacted or will not.
 */
const settledAfterIdleSeconds = 15;

/**
 * Waits until the server has used under a tenth of a core in each second of `settledAfterIdleSeconds`
 * in a row (at most five minutes), and says how long that took: after a bulk load LevelDB goes on
 * compacting in the background, and GETs measured meanwhile would share the cores with it.
 */
async function settle(pid: number): Promise<number> {
  const start = performance.now();
  let before = await cpuMsOf(pid);
  let idleSeconds = 0;
  while (idleSeconds < settledAfterIdleSeconds && performance.now() - start < 300_000) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const now = await cpuMsOf(pid);
    idleSeconds = now - before < 100 ? idleSeconds + 1 : 0;
    before = now;
  }
  return (performance.now() - start) / 1000;
}

/** Allocated bytes (`du`) of the data dir and of its ledger and config folders. */
async function dataDirBytes(dataDir: string): Promise<ScaleResult['dataDir']> {
  return {
    bytes: await allocatedBytes(dataDir),
    ledgerBytes: await allocatedBytes(join(dataDir, 'ledger')),
    configBytes: await allocatedBytes(join(dataDir, 'configs')),
  };
}

async function allocatedBytes(path: string): Promise<number> {
  const { stdout } = await run('du', ['-s', '--block-size=1', path]);
  return Number(stdout.split('\t')[0]);
}

async function startServer(dir: string, dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  const configFile = join(dir, 'cldist.config.json');
  // The origin is unreachable on purpose: the poller fails once at start and then sleeps for a day.
  await writeFile(
    configFile,
    JSON.stringify({ channels: [{ name: 'stable', baseUrl: 'http://127.0.0.1:9' }] }),
  );
  // Profiled, the server runs from the TypeScript sources, so the profile names functions as they are written.
  const entry =
    flags.profile === undefined
      ? [join(projectRoot, 'bin/cldist.js')]
      : ['--cpu-prof', '--cpu-prof-dir', flags.profile, '--import', 'tsx', join(projectRoot, 'local/cli.ts')];
  return spawnServe([
    ...entry,
    ...['serve', '--config', configFile, '--data-dir', dataDir, '--port', '0', '--poll-seconds', '86400'],
  ]);
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  await exited;
  clearTimeout(timer);
}

/**
 * Registers ids `s0` … `s{count-1}` in batches of `batch` lines, `parallel` requests at a time, and keeps
 * every token (43 bytes each, in one buffer) for the GET runs.
 */
async function register(
  url: string,
  adminToken: string,
  count: number,
  batch: number,
  parallel: number,
): Promise<Buffer> {
  const tokens = Buffer.alloc(count * tokenLength);
  let next = 0;
  let done = 0;
  let reported = 0;
  const worker = async () => {
    while (next < count) {
      const first = next;
      const last = Math.min(count, first + batch);
      next = last;
      const lines: string[] = [];
      for (let i = first; i < last; i++)
        lines.push(JSON.stringify({ id: `s${i}`, ignition: oneFileConfig(`s${i}`) }));
      const response = await fetch(`${url}/v1/instances`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/x-ndjson' },
        body: `${lines.join('\n')}\n`,
      });
      const answers = (await response.text()).trim().split('\n');
      if (!response.ok || !answers.at(-1)?.includes('"done":true')) {
        throw new Error(
          `bulk request for s${first}…s${last - 1} answered ${response.status}: ${answers.at(-1)}`,
        );
      }
      for (const answer of answers.slice(0, -1)) {
        const { line, token } = JSON.parse(answer) as { line: number; token?: string };
        if (token?.length !== tokenLength) throw new Error(`line ${line} has no token: ${answer}`);
        tokens.write(token, (first + line - 1) * tokenLength, 'latin1');
      }
      done += last - first;
      if (done - reported >= count / 10) {
        reported = done;
        process.stderr.write(`registered ${done}/${count}\n`);
      }
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return tokens;
}

function describe(name: string, f: LoadFigures): string {
  const failures = [...f.failures].map(([kind, n]) => `${kind}×${n}`).join(' ') || 'none';
  return `${name.padEnd(20)} ${f.requestsPerSecond.toFixed(0).padStart(7)} req/s   p50 ${f.p50Ms.toFixed(2).padStart(6)} ms   p99 ${f.p99Ms.toFixed(2).padStart(6)} ms   failures ${failures}`;
}

interface GetFigures {
  random: ScaleResult['random'];
  hot: ScaleResult['hot'];
  ratio: number;
  failures: number;
  generatorCpuShare: number;
}

/**
 * The GET runs, order alternating between rounds; each run's server CPU (from /proc) and this process's
 * CPU are taken around it, so the figures say what a GET cost the server and what the generator spent.
 */
async function getRounds(
  pid: number,
  clients: { random: RawClient; hot: RawClient },
  connections: number,
  seconds: number,
  rounds: number,
): Promise<GetFigures> {
  const results = { random: [] as LoadFigures[], hot: [] as LoadFigures[] };
  const cpu = { random: [] as number[], hot: [] as number[] };
  let generatorMs = 0;
  let elapsedMs = 0;
  process.stdout.write(
    `GET /v1/instances/{id}/ignition, ${connections} keep-alive connections, closed loop, ${seconds} s a run, ${rounds} rounds\n`,
  );
  for (let round = 1; round <= rounds; round++) {
    const order = round % 2 === 1 ? (['random', 'hot'] as const) : (['hot', 'random'] as const);
    for (const kind of order) {
      const serverBefore = await cpuMsOf(pid);
      const ownBefore = process.cpuUsage();
      const runStart = performance.now();
      const figures = await saturate([{ client: clients[kind], connections }], seconds);
      elapsedMs += performance.now() - runStart;
      const own = process.cpuUsage(ownBefore);
      generatorMs += (own.user + own.system) / 1000;
      cpu[kind].push((((await cpuMsOf(pid)) - serverBefore) * 1000) / Math.max(1, figures.ok));
      results[kind].push(figures);
      process.stdout.write(`round ${round}  ${describe(`${kind} instance`, figures)}\n`);
    }
  }
  const summary = (list: LoadFigures[], cpuUs: number[]) => ({
    perSecond: median(list.map((f) => f.requestsPerSecond)),
    p50Ms: median(list.map((f) => f.p50Ms)),
    p99Ms: median(list.map((f) => f.p99Ms)),
    cpuUsPerRequest: median(cpuUs),
  });
  return {
    random: summary(results.random, cpu.random),
    hot: summary(results.hot, cpu.hot),
    ratio: median(
      results.random.map((r, i) => r.requestsPerSecond / (results.hot[i]?.requestsPerSecond ?? Number.NaN)),
    ),
    failures: [...results.random, ...results.hot].reduce(
      (n, f) => n + [...f.failures.values()].reduce((a, b) => a + b, 0),
      0,
    ),
    generatorCpuShare: generatorMs / elapsedMs,
  };
}

async function measure(): Promise<ScaleResult> {
  const instances = positive('instances', flags.instances, 10_000_000);
  const seconds = positive('seconds', flags.seconds, 600);
  const rounds = positive('rounds', flags.rounds, 100);
  const connections = positive('connections', flags.connections, 1024);
  const batch = positive('batch', flags.batch, 1000);
  const putConnections = positive('put-connections', flags['put-connections'], 64);
  const loadAverage = loadavg();
  const dir = await mkdtemp(join(tmpdir(), 'cldist-bench-scale-'));
  const dataDir = join(dir, 'data');
  const server = await startServer(dir, dataDir);
  const pid = server.child.pid ?? Number.NaN;
  const clients: RawClient[] = [];
  try {
    const started = await memoryOf(pid);
    const adminToken = (await readFile(join(dataDir, 'admin-token'), 'utf8')).trim();
    const registerStart = performance.now();
    const tokens = await register(server.url, adminToken, instances, batch, putConnections);
    const registerSeconds = (performance.now() - registerStart) / 1000;
    const registered = await memoryOf(pid);
    process.stdout.write(
      `${instances} instances registered in ${registerSeconds.toFixed(1)} s: ${(instances / registerSeconds).toFixed(0)}/s ` +
        `(POST /v1/instances, ${batch} lines a request, ${putConnections} at a time)\n`,
    );
    process.stdout.write(
      `server idle again ${(await settle(pid)).toFixed(0)} s later (LevelDB compaction)\n`,
    );

    const origin = new URL(server.url);
    const head = `Host: ${origin.host}\r\nAccept: ${accept}\r\nConnection: keep-alive\r\nAuthorization: Bearer `;
    const requestFor = (i: number) =>
      Buffer.from(
        `GET /v1/instances/s${i}/ignition HTTP/1.1\r\n${head}${tokens.toString('latin1', i * tokenLength, (i + 1) * tokenLength)}\r\n\r\n`,
        'latin1',
      );
    const hotRequest = requestFor(Math.floor(instances / 2));
    const random = createRawClient({
      url: server.url,
      connections,
      nextRequest: () => requestFor(Math.floor(Math.random() * instances)),
    });
    const hot = createRawClient({ url: server.url, connections, nextRequest: () => hotRequest });
    clients.push(random, hot);
    // Warm-up: JIT and every keep-alive socket, outside the figures.
    await saturate([{ client: hot, connections }], 2);
    await saturate([{ client: random, connections }], 2);

    const gets = await getRounds(pid, { random, hot }, connections, seconds, rounds);
    const afterGets = await memoryOf(pid);
    await Promise.all(clients.map((client) => client.close()));
    clients.length = 0;
    await stopServer(server.child);
    const result: ScaleResult = {
      instances,
      connections,
      seconds,
      rounds,
      node: process.versions.node,
      loadAverage,
      registration: { perSecond: instances / registerSeconds, seconds: registerSeconds },
      ...gets,
      rssMiB: {
        started: started.rssMiB,
        registered: registered.rssMiB,
        afterGets: afterGets.rssMiB,
        peak: afterGets.peakMiB,
      },
      mappedMiB: { registered: registered.fileMiB, afterGets: afterGets.fileMiB },
      dataDir: await dataDirBytes(dataDir),
    };
    return result;
  } finally {
    await Promise.all(clients.map((client) => client.close()));
    await stopServer(server.child);
    if (flags.keep) process.stderr.write(`kept the server's files in ${dir}\n`);
    else await rm(dir, { recursive: true, force: true });
  }
}

function report(r: ScaleResult): string {
  const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');
  const perInstance = r.dataDir.bytes / r.instances;
  return [
    '',
    `${r.instances} instances, medians over ${r.rounds} rounds (load average at start ${r.loadAverage.map((l) => l.toFixed(2)).join(' ')})`,
    `  registration     ${r.registration.perSecond.toFixed(0)} instances/s`,
    `  random instance  ${r.random.perSecond.toFixed(0)} req/s   p50 ${r.random.p50Ms.toFixed(2)} ms   p99 ${r.random.p99Ms.toFixed(2)} ms   server CPU ${r.random.cpuUsPerRequest.toFixed(0)} µs/request`,
    `  hot instance     ${r.hot.perSecond.toFixed(0)} req/s   p50 ${r.hot.p50Ms.toFixed(2)} ms   p99 ${r.hot.p99Ms.toFixed(2)} ms   server CPU ${r.hot.cpuUsPerRequest.toFixed(0)} µs/request`,
    `  random / hot     ${r.ratio.toFixed(2)}   failed requests ${r.failures}   load generator CPU ${(r.generatorCpuShare * 100).toFixed(0)} % of one core`,
    `  server RSS       ${r.rssMiB.started.toFixed(0)} MiB started, ${r.rssMiB.registered.toFixed(0)} MiB registered, ${r.rssMiB.afterGets.toFixed(0)} MiB after the GETs, ${r.rssMiB.peak.toFixed(0)} MiB peak (VmHWM)` +
      (r.mappedMiB === undefined
        ? ''
        : `; of it mapped files ${r.mappedMiB.registered.toFixed(0)} MiB registered, ${r.mappedMiB.afterGets.toFixed(0)} MiB after the GETs`),
    `  data dir         ${(r.dataDir.bytes / 1024 / 1024).toFixed(1)} MiB after shutdown: ${perInstance.toFixed(0)} bytes/instance (ledger ${(r.dataDir.ledgerBytes / r.instances).toFixed(0)}, configs ${(r.dataDir.configBytes / r.instances).toFixed(0)})`,
    `  targets (at 1,000,000): registration ≥ 2000/s ${verdict(r.registration.perSecond >= 2000)}; random ≥ 0.5 × hot ${verdict(r.ratio >= 0.5)}; ` +
      `random p99 ≤ 25 ms ${verdict(r.random.p99Ms <= 25)}; RSS ≤ 512 MiB ${verdict(r.rssMiB.peak <= 512)}; data dir ≤ 2 KiB/instance ${verdict(perInstance <= 2048)}`,
    '',
  ].join('\n');
}

async function plot(): Promise<void> {
  let results: ScaleResult[];
  if (flags.from === undefined) {
    results = [];
    for (const size of flags.sizes.split(',').map((s) => positive('sizes', s.trim(), 10_000_000))) {
      const json = join(tmpdir(), `cldist-bench-scale-${process.pid}-${size}.json`);
      const forwarded = ['seconds', 'rounds', 'connections', 'batch', 'put-connections'].flatMap((name) => [
        `--${name}`,
        String(flags[name as keyof typeof flags]),
      ]);
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', self, '--instances', String(size), '--json', json, ...forwarded],
        { stdio: 'inherit' },
      );
      const code = await new Promise((resolve) => child.once('exit', resolve));
      if (code !== 0) throw new Error(`bench/scale.ts --instances ${size} exited with ${code}`);
      results.push(...(await readScaleResults([json])));
      await rm(json, { force: true });
    }
  } else {
    results = await readScaleResults(flags.from.split(','));
  }
  process.stdout.write(await writeScalePlot(results));
}

if (flags.plot) {
  await plot();
} else {
  const result = await measure();
  process.stdout.write(report(result));
  if (flags.json !== undefined) await writeFile(flags.json, `${JSON.stringify(result, null, 2)}\n`);
}
