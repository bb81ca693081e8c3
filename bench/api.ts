import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { startBenchApi } from './local-api.ts';
import { type WrkFigures, wrk } from './support.ts';

/**
 * Throughput and latency of the authenticated `GET /v1/instances/{id}/ignition` in the single-machine shape
 * (dynalite on disk in the same process, the single-machine record cache, config bodies in a local folder,
 * @hono/node-server), driven by
 * wrk over loopback. The peer is a bare node:http server answering the same bytes with no lookup at all:
 * the ceiling of Node's HTTP stack on this machine, in the same run.
 *
 * wrk keeps every connection busy, so its p99 is the latency at saturation (far above the 1500 req/s
 * target, and with the team's other work on the same 2 cores). A second run paces each connection with a
 * wrk Lua `delay()` to about the target rate, which is the p99 an instance fleet at that rate would see.
 *
 *   node --import tsx bench/api.ts [seconds=20] [connections=32]
 */
const seconds = Number(process.argv[2] ?? 20);
const connections = Number(process.argv[3] ?? 32);
const load = { connections, seconds };

function format(name: string, f: WrkFigures): string {
  return `${name.padEnd(34)} ${f.requestsPerSecond.toFixed(0).padStart(7)} req/s   p50 ${f.p50Ms.toFixed(2).padStart(6)} ms   p99 ${f.p99Ms.toFixed(2).padStart(6)} ms   non-2xx ${f.non2xx}`;
}

const adminToken = 'bench-admin-token';
const benchApi = await startBenchApi('cldist-bench-api-', adminToken);
const { dir, server, instances } = benchApi;
const targetRate = 1500;
const pacing = join(dir, 'pace.lua');
await writeFile(
  pacing,
  `function delay() return ${Math.max(1, Math.round((connections * 1000) / targetRate) - 1)} end\n`,
);

const config = {
  ignition: { version: '3.4.0' },
  storage: { files: [{ path: '/etc/hostname', mode: 420, contents: { source: 'data:,bench-node' } }] },
  passwd: { users: [{ name: 'core', sshAuthorizedKeys: [`ssh-ed25519 ${'A'.repeat(68)} bench`] }] },
};
const put = await fetch(`${server.url}/v1/instances/bench-node`, {
  method: 'PUT',
  headers: { Authorization: `Bearer ${adminToken}` },
  body: JSON.stringify({ ignition: config }),
});
const { token } = (await put.json()) as { token: string };
const body = Buffer.from(JSON.stringify(config));

const bare = createServer((_req, res) => {
  res.writeHead(200, { 'Content-Type': 'application/vnd.coreos.ignition+json', 'Cache-Control': 'no-store' });
  res.end(body);
});
await new Promise<void>((resolve) => bare.listen(0, '127.0.0.1', resolve));
const bareUrl = `http://127.0.0.1:${(bare.address() as AddressInfo).port}/`;

try {
  const accept = 'Accept: application/vnd.coreos.ignition+json;version=3.4.0, */*;q=0.1';
  process.stdout.write(`wrk -t2 -c${connections} -d${seconds}s --latency, ${body.byteLength}-byte config\n`);
  const peer = await wrk(bareUrl, { ...load, headers: [accept] });
  process.stdout.write(`${format('peer: bare node:http, no lookup', peer)}\n`);
  const target = `${server.url}/v1/instances/bench-node/ignition`;
  const auth = `Authorization: Bearer ${token}`;
  const api = await wrk(target, { ...load, headers: [accept, auth] });
  process.stdout.write(`${format('cldist GET .../ignition, saturated', api)}\n`);
  const paced = await wrk(target, { ...load, headers: [accept, auth], script: pacing });
  process.stdout.write(`${format(`cldist, paced to ~${targetRate} req/s`, paced)}\n`);
  await instances.flush();
  const verdict = (f: WrkFigures) => (f.p99Ms <= 25 && f.non2xx === 0 ? 'met' : 'MISSED');
  process.stdout.write(
    `ratio cldist/peer (saturated): ${(api.requestsPerSecond / peer.requestsPerSecond).toFixed(2)}\n` +
      `target >= ${targetRate} req/s: ${api.requestsPerSecond >= targetRate ? 'met' : 'MISSED'}; ` +
      `p99 <= 25 ms saturated: ${verdict(api)}; at ~${targetRate} req/s: ${verdict(paced)}\n`,
  );
} finally {
  await new Promise<void>((resolve) => bare.close(() => resolve()));
  await benchApi.close();
}
