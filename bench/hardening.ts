import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Command, InvalidArgumentError } from 'commander';
import { silentLogger } from '../local/runtime/log.ts';
import { type ServeHandle, startServe } from '../local/serve/index.ts';
import { parseConfig } from '../shared/config.ts';
import { validateCloudConfig } from '../shared/instances/cloud-config.ts';
import { maxCloudConfigBytes } from '../shared/instances/service.ts';
import { median } from './support.ts';

/**
 * Probes of the API hardening, each against `cldist serve` in this process (dynalite on disk, the local
 * config store, the record cache), so that a figure before a change and after it come from the same code
 * path the operator runs:
 *
 *   node --import tsx bench/hardening.ts race [--rounds 40]      concurrent PUTs to one id: unfetchable rounds
 *   node --import tsx bench/hardening.ts unknown [--fetches 15000] unknown-id fetches: data-dir growth
 *   node --import tsx bench/hardening.ts timing [--requests 300]  known against unknown ids: median latency
 *   node --import tsx bench/hardening.ts yaml [--keys 60000]      a huge cloud-config PUT and a mirror GET meanwhile
 */
const ignitionOf = (name: string) => ({
  ignition: {
    ignition: { version: '3.3.0' },
    storage: { files: [{ path: '/etc/hostname', mode: 420, contents: { source: `data:,${name}` } }] },
  },
});

async function withServe<T>(work: (handle: ServeHandle, dataDir: string) => Promise<T>): Promise<T> {
  const dataDir = await mkdtemp(join(tmpdir(), 'cldist-bench-hardening-'));
  // An origin on a closed loopback port: polls fail fast, and nothing leaves the machine.
  const config = parseConfig({ channels: [{ name: 'stable', baseUrl: 'http://127.0.0.1:9' }] });
  const handle = await startServe({
    config,
    dataDir,
    host: '127.0.0.1',
    port: 0,
    concurrency: 1,
    logger: silentLogger,
    tracker: { begin: () => ({ advance() {}, end() {} }) },
    pollEveryMs: 3_600_000,
  });
  try {
    return await work(handle, dataDir);
  } finally {
    await handle.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function put(
  handle: ServeHandle,
  id: string,
  body: unknown,
): Promise<{ status: number; token?: string }> {
  const response = await fetch(`${handle.url}/v1/instances/${id}`, {
    method: 'PUT',
    headers: { Authorization: `Bearer ${handle.adminToken}` },
    body: JSON.stringify(body),
  });
  const answer = (await response.json()) as { token?: string };
  return { status: response.status, ...(answer.token === undefined ? {} : { token: answer.token }) };
}

async function fetchStatus(handle: ServeHandle, id: string, token: string): Promise<number> {
  const response = await fetch(`${handle.url}/v1/instances/${id}/ignition`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  await response.arrayBuffer();
  return response.status;
}

/** A round is unfetchable when no token a PUT answered with fetches the config (the valid one gets 503). */
async function race(rounds: number): Promise<void> {
  await withServe(async (handle) => {
    for (const concurrency of [2, 4]) {
      let unfetchable = 0;
      const statuses = new Map<number, number>();
      for (let round = 0; round < rounds; round++) {
        const id = `race-${concurrency}-${round}`;
        await put(handle, id, ignitionOf('x'));
        const bodies = Array.from({ length: concurrency }, (_, i) => ignitionOf(i % 2 === 0 ? 'y' : 'x'));
        const answers = await Promise.all(bodies.map((body) => put(handle, id, body)));
        for (const answer of answers) statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        const tokens = answers.flatMap((a) => (a.token === undefined ? [] : [a.token]));
        const fetched = await Promise.all(tokens.map((token) => fetchStatus(handle, id, token)));
        if (!fetched.includes(200)) unfetchable++;
      }
      const answered = [...statuses].map(([status, n]) => `${status}x${n}`).join(' ');
      process.stdout.write(
        `${concurrency} concurrent PUTs: ${unfetchable} of ${rounds} rounds unfetchable (PUT answers ${answered})\n`,
      );
    }
  });
}

function duBytes(dir: string): number {
  return Number(execFileSync('du', ['-sb', dir], { encoding: 'utf8' }).split('\t')[0]);
}

async function unknown(fetches: number): Promise<void> {
  let before = 0;
  let after = 0;
  let dataDir = '';
  await withServe(async (handle, dir) => {
    dataDir = dir;
    await put(handle, 'known', ignitionOf('known'));
    before = duBytes(dir);
    let next = 0;
    const worker = async () => {
      while (next < fetches) {
        const n = next++;
        await fetchStatus(handle, `nobody-${n}-${Math.random().toString(36).slice(2)}`, 'x');
      }
    };
    const started = performance.now();
    await Promise.all(Array.from({ length: 16 }, worker));
    const seconds = (performance.now() - started) / 1000;
    process.stdout.write(`${fetches} unknown-id fetches in ${seconds.toFixed(1)} s\n`);
    await handle.close();
    after = duBytes(dir);
  });
  const growth = (after - before) / (1024 * 1024);
  process.stdout.write(`data dir ${dataDir}: ${before} -> ${after} bytes, growth ${growth.toFixed(2)} MiB\n`);
}

async function timing(requests: number): Promise<void> {
  await withServe(async (handle) => {
    const known = Array.from({ length: 50 }, (_, i) => `known-${i}`);
    for (const id of known) await put(handle, id, ignitionOf(id));
    const time = async (id: string) => {
      const started = performance.now();
      await fetchStatus(handle, id, 'not-the-token');
      return performance.now() - started;
    };
    for (let i = 0; i < 50; i++) await time(known[i % known.length] ?? 'known-0');
    const knownMs: number[] = [];
    const unknownMs: number[] = [];
    for (let i = 0; i < requests; i++) {
      knownMs.push(await time(known[i % known.length] ?? 'known-0'));
      unknownMs.push(await time(`fresh-${i}-${Math.random().toString(36).slice(2)}`));
    }
    const k = median(knownMs);
    const u = median(unknownMs);
    process.stdout.write(
      `${requests} requests each, alternating, wrong token: known median ${k.toFixed(3)} ms, ` +
        `unknown median ${u.toFixed(3)} ms, unknown/known ${(u / k).toFixed(2)}\n`,
    );
  });
}

function cloudConfigOf(keys: number): string {
  const lines = ['#cloud-config'];
  for (let i = 0; i < keys; i++) lines.push(`k${i.toString(36).padStart(5, '0')}: v`);
  return `${lines.join('\n')}\n`;
}

async function yaml(keys: number): Promise<void> {
  const huge = cloudConfigOf(keys);
  const validationStarted = performance.now();
  validateCloudConfig(huge);
  const validationMs = performance.now() - validationStarted;
  process.stdout.write(
    `${keys}-key cloud-config (${(huge.length / 1024).toFixed(0)} KiB): validateCloudConfig ${validationMs.toFixed(0)} ms\n`,
  );
  // The largest mapping under the cloud-config cap: what an accepted PUT can cost at most.
  let largest = 1;
  while (Buffer.byteLength(cloudConfigOf(largest * 2)) <= maxCloudConfigBytes) largest *= 2;
  while (Buffer.byteLength(cloudConfigOf(largest + 100)) <= maxCloudConfigBytes) largest += 100;
  await withServe(async (handle) => {
    await handle.store.put('stable/amd64-usr/1.0.0/version.txt', 'FLATCAR_VERSION=1.0.0\n');
    const mirrorUrl = `${handle.url}/mirror/stable/amd64-usr/1.0.0/version.txt`;
    const get = async () => {
      const started = performance.now();
      const response = await fetch(mirrorUrl);
      await response.arrayBuffer();
      return performance.now() - started;
    };
    const idle: number[] = [];
    for (let i = 0; i < 20; i++) idle.push(await get());
    for (const [label, cloudConfig] of [
      [`${keys} keys`, huge],
      [`${largest} keys (largest under the cap)`, cloudConfigOf(largest)],
    ] as const) {
      const started = performance.now();
      const putDone = put(handle, `huge-${label.length}`, { cloudConfig }).then((answer) => ({
        ...answer,
        ms: performance.now() - started,
      }));
      await new Promise((resolve) => setTimeout(resolve, 20));
      const during = await get();
      const answer = await putDone;
      process.stdout.write(
        `PUT of ${label}, ${(cloudConfig.length / 1024).toFixed(0)} KiB: ${answer.status} in ${answer.ms.toFixed(0)} ms; ` +
          `mirror GET during it ${during.toFixed(1)} ms (idle median ${median(idle).toFixed(2)} ms)\n`,
      );
    }
  });
}

function count(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}`);
    }
    return n;
  };
}

const program = new Command('hardening').description('API hardening probes against cldist serve');
program
  .command('race')
  .option('--rounds <n>', 'rounds per concurrency', count('--rounds', 1, 10_000), 40)
  .action((o: { rounds: number }) => race(o.rounds));
program
  .command('unknown')
  .option('--fetches <n>', 'unknown-id fetches', count('--fetches', 1, 1_000_000), 15_000)
  .action((o: { fetches: number }) => unknown(o.fetches));
program
  .command('timing')
  .option('--requests <n>', 'requests per kind', count('--requests', 10, 100_000), 300)
  .action((o: { requests: number }) => timing(o.requests));
program
  .command('yaml')
  .option('--keys <n>', 'keys in the mapping', count('--keys', 1, 1_000_000), 60_000)
  .action((o: { keys: number }) => yaml(o.keys));
await program.parseAsync();
