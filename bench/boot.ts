import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApiApp } from '../shared/api/app.ts';
import { serveNode } from '../shared/api/node-server.ts';
import { createDynamoBootStore } from '../shared/boot/store.ts';
import { withBootCache, withCurrentCache } from '../shared/boot/store-cache.ts';
import { parseConfig } from '../shared/config.ts';
import { withRecordCache } from '../shared/instances/record-cache.ts';
import { createDynamoInstanceRepository } from '../shared/instances/repository.ts';
import { createDynamoLedger } from '../shared/ledger/ledger.ts';
import { createLocalStore } from '../shared/store/local-store.ts';
import { mirrorBootRelease } from '../test/support/boot-release.ts';
import { startBenchTable } from './local-api.ts';
import { median, type WrkFigures, wrk } from './support.ts';

/**
 * `GET /v1/boot/ipxe` in the single-machine shape (dynalite on disk in the same process, the record cache,
 * @hono/node-server), driven by wrk over loopback, beside the peer measured the same way in the same run:
 * the token route `GET /v1/instances/{id}/ignition` (bench/api.ts). Two boot cases, each request asking
 * for the next of 64 MACs (a wrk Lua script): registered MACs (match, profile, current release, and one
 * conditional ledger write that stores the new boot token's hash) and unknown MACs (the lookups only,
 * answered with the wait-and-retry script).
 *
 * Rounds alternate the order of the three routes; figures are medians over the rounds, the ratios the
 * medians of the per-round ratios to the token route.
 *
 *   node --import tsx bench/boot.ts [seconds=10] [connections=16] [rounds=3]
 */
const seconds = Number(process.argv[2] ?? 10);
const connections = Number(process.argv[3] ?? 16);
const rounds = Number(process.argv[4] ?? 3);
for (const [name, value] of Object.entries({ seconds, connections, rounds })) {
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive whole number`);
}

const dir = await mkdtemp(join(tmpdir(), 'cldist-bench-boot-'));
const table = await startBenchTable(dir);
const { clients } = table;
const clock = () => new Date();
const ledger = createDynamoLedger(clients.doc, 'cldist-ledger', { clock });
const instances = withRecordCache(createDynamoInstanceRepository(clients.doc, { table: 'cldist-ledger' }));
const adminToken = 'bench-admin-token';
const app = createApiApp(
  {
    instances,
    bodies: createLocalStore(join(dir, 'configs')),
    clock,
    adminAuth: { kind: 'bearer', token: adminToken },
    // As `cldist serve` builds it: the boot store and the current version behind the one-machine caches.
    boot: {
      store: withBootCache(createDynamoBootStore(clients.doc, 'cldist-ledger', clock)),
      releases: withCurrentCache(ledger),
    },
  },
  parseConfig({ boot: { mirrorBaseUrl: 'http://mirror.example/mirror' } }),
);
const server = await serveNode(app, { host: '127.0.0.1', port: 0 });
const admin = (method: string, path: string, body: unknown) =>
  fetch(`${server.url}${path}`, {
    method,
    headers: { Authorization: `Bearer ${adminToken}` },
    body: JSON.stringify(body),
  });

const release = { source: 'flatcar', channel: 'stable', board: 'amd64-usr', version: '4081.2.0' };
await mirrorBootRelease(ledger, release);
await admin('PUT', '/v1/boot/profiles/ram', { channel: 'stable', kernelArgs: ['flatcar.first_boot=1'] });
const config = {
  ignition: { version: '3.4.0' },
  storage: { files: [{ path: '/etc/motd', contents: { source: 'data:,x' } }] },
};
const put = await admin('PUT', '/v1/instances/bench-node', { ignition: config });
const { token } = (await put.json()) as { token: string };
/** Each request asks for the next of `machines` MACs, as a rack of machines booting at once would. */
const machines = 64;
const macOf = (group: string, i: number) => `52-54-00-00-${group}-${i.toString(16).padStart(2, '0')}`;
for (let i = 0; i < machines; i++) {
  const id = `metal-${i}`;
  await admin('PUT', `/v1/instances/${id}`, { ignition: config });
  const selection = await admin('PUT', `/v1/instances/${id}/boot`, { mac: macOf('01', i), profile: 'ram' });
  if (selection.status !== 200) throw new Error(`boot selection refused: ${await selection.text()}`);
}

/** A wrk script asking for MAC `52-54-00-00-{group}-NN`, NN cycling over the machines. */
async function macScript(group: string): Promise<string> {
  const file = join(dir, `macs-${group}.lua`);
  const path = `/v1/boot/ipxe?mac=52-54-00-00-${group}-%02x&uuid=&serial=&hostname=`;
  await writeFile(
    file,
    [
      'local n = 0',
      'request = function()',
      '  n = n + 1',
      `  return wrk.format(nil, string.format("${path}", n % ${machines}))`,
      'end',
      '',
    ].join('\n'),
  );
  return file;
}

const routes: Record<'token' | 'matched' | 'unknown', { url: string; headers: string[]; script?: string }> = {
  token: {
    url: `${server.url}/v1/instances/bench-node/ignition`,
    headers: [`Authorization: Bearer ${token}`],
  },
  matched: { url: `${server.url}/`, headers: [], script: await macScript('01') },
  unknown: { url: `${server.url}/`, headers: [], script: await macScript('ff') },
};
type RouteName = keyof typeof routes;

try {
  process.stdout.write(
    `wrk -t2 -c${connections} -d${seconds}s --latency, ${rounds} rounds; load average at start ${loadavg()[0]?.toFixed(1)}\n`,
  );
  const results: Record<RouteName, WrkFigures[]> = { token: [], matched: [], unknown: [] };
  for (let round = 0; round < rounds; round++) {
    const order: RouteName[] =
      round % 2 === 0 ? ['token', 'matched', 'unknown'] : ['unknown', 'matched', 'token'];
    for (const name of order) {
      const route = routes[name];
      const figures = await wrk(route.url, {
        connections,
        seconds,
        headers: route.headers,
        script: route.script,
      });
      results[name].push(figures);
      process.stdout.write(
        `round ${round + 1} ${name.padEnd(8)} ${figures.requestsPerSecond.toFixed(0).padStart(6)} req/s  p50 ${figures.p50Ms.toFixed(2)} ms  p99 ${figures.p99Ms.toFixed(2)} ms  non-2xx ${figures.non2xx}\n`,
      );
    }
  }
  await instances.flush();
  const med = (name: RouteName, pick: (f: WrkFigures) => number) => median(results[name].map(pick));
  for (const name of Object.keys(routes) as RouteName[]) {
    process.stdout.write(
      `median ${name.padEnd(8)} ${med(name, (f) => f.requestsPerSecond)
        .toFixed(0)
        .padStart(
          6,
        )} req/s  p50 ${med(name, (f) => f.p50Ms).toFixed(2)} ms  p99 ${med(name, (f) => f.p99Ms).toFixed(2)} ms\n`,
    );
  }
  const ratio = (name: RouteName) =>
    median(
      results[name].map((f, i) => f.requestsPerSecond / (results.token[i]?.requestsPerSecond ?? Number.NaN)),
    );
  process.stdout.write(
    `ratio to the token route (median of per-round ratios): matched ${ratio('matched').toFixed(2)}, unknown ${ratio('unknown').toFixed(2)}\n`,
  );
} finally {
  await server.close();
  await instances.close();
  await table.close();
  await rm(dir, { recursive: true, force: true });
}
