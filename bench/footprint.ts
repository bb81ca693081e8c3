import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { projectRoot } from '../shared/config.ts';
import { oneFileConfig, spawnServe } from './support.ts';

/**
 * What registered instances cost a running `cldist serve` (offline: its origin is a closed loopback port): data-dir bytes per instance
 * (the mirror folder left out: it holds releases, not instances) and server RSS after registering N
 * instances through the bulk route and after fetching random ones. Its peer in the same run is the same
 * server with every body in the config store (`instances.inlineBodyMaxBytes: 0`), a folder and a file per
 * instance as before inline bodies. Each config is a 3.3.0 Ignition config with one file.
 *
 *   npx tsx bench/footprint.ts [--instances 20000] [--fetches 5000] [--forms store,inline] [--heap-mib N]
 */
const { values } = parseArgs({
  options: {
    instances: { type: 'string', default: '20000' },
    fetches: { type: 'string', default: '5000' },
    forms: { type: 'string', default: 'store,inline' },
    'heap-mib': { type: 'string' },
  },
});
const forms = values.forms.split(',');
if (forms.some((f) => f !== 'store' && f !== 'inline'))
  throw new Error('--forms takes store, inline or both');
const heapMiB = values['heap-mib'] === undefined ? undefined : Number(values['heap-mib']);
if (heapMiB !== undefined && !(Number.isInteger(heapMiB) && heapMiB > 0)) {
  throw new Error('--heap-mib takes a positive integer');
}
const instances = Number(values.instances);
const fetches = Number(values.fetches);
if (!Number.isInteger(instances) || instances <= 0) throw new Error('--instances takes a positive integer');
if (!Number.isInteger(fetches) || fetches < 0) throw new Error('--fetches takes a whole number');

interface Server {
  url: string;
  child: ChildProcess;
  dataDir: string;
}

async function startServe(dataDir: string, configFile: string): Promise<Server> {
  const { child, url } = await spawnServe(
    [
      join(projectRoot, 'bin/cldist.js'),
      ...['serve', '--config', configFile, '--data-dir', dataDir, '--port', '0', '--poll-seconds', '3600'],
    ],
    // A cap on V8's old space shows what is retained rather than what the collector has not yet reclaimed.
    heapMiB === undefined ? {} : { NODE_OPTIONS: `--max-old-space-size=${heapMiB}` },
  );
  return { url, child, dataDir };
}

async function rssMiB(pid: number | undefined): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
  return kib / 1024;
}

function duBytes(dir: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const du = spawn('du', ['-sb', '--exclude=mirror', dir]);
    let out = '';
    du.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    du.on('exit', (code) =>
      code === 0 ? resolve(Number(out.split('\t')[0])) : reject(new Error(`du exited ${code}`)),
    );
  });
}

interface Result {
  form: string;
  registerPerSecond: number;
  bytesBefore: number;
  bytesAfter: number;
  rssBefore: number;
  rssAfterRegister: number;
  rssAfterFetch: number;
}

async function measure(form: 'inline' | 'store'): Promise<Result> {
  const dataDir = await mkdtemp(join(tmpdir(), `cldist-footprint-${form}-`));
  const configFile = join(dataDir, '..', `${dataDir.split('/').at(-1)}.json`);
  // An origin on a closed loopback port: polls fail at once, and nothing leaves the machine.
  const offline = { channels: [{ name: 'stable', baseUrl: 'http://127.0.0.1:9/' }] };
  const instancesSection = form === 'store' ? { instances: { inlineBodyMaxBytes: 0 } } : {};
  await writeFile(configFile, JSON.stringify({ ...offline, ...instancesSection }));
  let server: Server | undefined;
  try {
    server = await startServe(dataDir, configFile);
    const token = (await readFile(join(dataDir, 'admin-token'), 'utf8')).trim();
    const headers = { Authorization: `Bearer ${token}` };
    const bytesBefore = await duBytes(dataDir);
    const rssBefore = await rssMiB(server.child.pid);
    const tokens: string[] = [];
    const started = performance.now();
    for (let first = 0; first < instances; first += 500) {
      const lines: string[] = [];
      for (let i = first; i < Math.min(instances, first + 500); i++) {
        lines.push(JSON.stringify({ id: `node-${i}`, ignition: oneFileConfig(`node-${i}`) }));
      }
      const response = await fetch(`${server.url}/v1/instances`, {
        method: 'POST',
        headers,
        body: lines.join('\n'),
      });
      for (const line of (await response.text()).split('\n')) {
        if (line === '') continue;
        const answer = JSON.parse(line) as { token?: string; error?: unknown };
        if (answer.error !== undefined) throw new Error(`bulk line failed: ${line}`);
        if (answer.token !== undefined) tokens.push(answer.token);
      }
    }
    const registerPerSecond = instances / ((performance.now() - started) / 1000);
    if (tokens.length !== instances) throw new Error(`${tokens.length} tokens for ${instances} instances`);
    const rssAfterRegister = await rssMiB(server.child.pid);
    for (let i = 0; i < fetches; i++) {
      const n = Math.floor(Math.random() * instances);
      const response = await fetch(`${server.url}/v1/instances/node-${n}/ignition`, {
        headers: { Authorization: `Bearer ${tokens[n]}` },
      });
      if (response.status !== 200) throw new Error(`fetch of node-${n} answered ${response.status}`);
      await response.arrayBuffer();
    }
    const rssAfterFetch = await rssMiB(server.child.pid);
    // Let the batched audit reach the ledger before the disk is measured.
    const { child } = server;
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    const bytesAfter = await duBytes(dataDir);
    return { form, registerPerSecond, bytesBefore, bytesAfter, rssBefore, rssAfterRegister, rssAfterFetch };
  } finally {
    if (server !== undefined && server.child.exitCode === null) server.child.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
    await rm(configFile, { force: true });
  }
}

const results: Result[] = [];
for (const form of forms) results.push(await measure(form === 'store' ? 'store' : 'inline'));
console.log(`${instances} instances registered (bulk, 500 lines a request), ${fetches} random fetches`);
for (const r of results) {
  const perInstance = (r.bytesAfter - r.bytesBefore) / instances;
  console.log(
    `${r.form.padEnd(7)} register ${r.registerPerSecond.toFixed(0)}/s, data dir +${perInstance.toFixed(0)} B/instance ` +
      `(${(r.bytesAfter / 1e6).toFixed(1)} MB without mirror/), RSS ${r.rssBefore.toFixed(0)} -> ` +
      `${r.rssAfterRegister.toFixed(0)} (registered) -> ${r.rssAfterFetch.toFixed(0)} MiB (fetched); ` +
      `RSS per instance ${(((r.rssAfterFetch - r.rssBefore) * 1024 * 1024) / instances).toFixed(0)} B`,
  );
}
const [store, inline] = results;
if (store !== undefined && inline !== undefined) {
  const ratio = (inline.bytesAfter - inline.bytesBefore) / (store.bytesAfter - store.bytesBefore);
  console.log(`inline/store data dir bytes per instance: ${ratio.toFixed(2)}`);
}
