import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createRawClient, type RawClient } from '../test/support/raw-http-client.ts';
import { describeLoad, type LoadFigures, paced, saturate } from './load.ts';
import { median, startIdleServe } from './support.ts';

/**
 * `GET /openstack/latest/user_data` identified by source address, side by side with the token route
 * `GET /v1/instances/{id}/ignition`, against one `cldist serve --metadata-listen` in the same run.
 *
 * Each instance is registered with its own address, and its client sockets are bound to that address,
 * so every request the metadata listener answers goes through the address lookup as a real instance's
 * would. The addresses are link-local (169.254.0.x) on the loopback interface of a network namespace the
 * benchmark creates for itself (`unshare --net`, root), with the listener on 169.254.169.254:80 there, as
 * on a hypervisor; nothing leaves the namespace.
 *
 * Per round: a saturated closed-loop run of each route (order alternating between rounds), then an
 * open-loop run of each paced at `--rate`. Both routes use the same raw keep-alive client
 * (test/support/raw-http-client.ts), whose cost per request is small next to the server's. Figures are medians
 * over the rounds; the ratio is the median of the per-round ratios.
 *
 *   npm run bench:metadata -- [--seconds 10] [--rounds 3] [--connections 32] [--instances 8] [--rate 1500]
 */
const { values: flags } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '32' },
    instances: { type: 'string', default: '8' },
    rate: { type: 'string', default: '1500' },
  },
});
const seconds = Number(flags.seconds);
const rounds = Number(flags.rounds);
const connections = Number(flags.connections);
const instanceCount = Number(flags.instances);
const rate = Number(flags.rate);
for (const [name, value] of Object.entries({
  seconds,
  rounds,
  connections,
  instances: instanceCount,
  rate,
})) {
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive whole number`);
}
if (instanceCount > 200 || connections % instanceCount !== 0) {
  throw new Error('--instances must be at most 200 and divide --connections');
}

const metadataAddress = '169.254.169.254';
const instanceAddress = (i: number) => `169.254.0.${10 + i}`;
const self = fileURLToPath(import.meta.url);

/** Outside the namespace: make it, give `lo` the addresses, and run this file again inside it. */
if (process.env.CLDIST_BENCH_NETNS !== '1') {
  const addresses = [metadataAddress, ...Array.from({ length: instanceCount }, (_, i) => instanceAddress(i))];
  const script = [
    'set -e',
    'ip link set lo up',
    ...addresses.map((a) => `ip addr add ${a}/16 dev lo`),
    `exec "${process.execPath}" --import tsx "${self}" "$@"`,
  ].join('\n');
  const result = spawnSync('unshare', ['--net', '--', 'sh', '-c', script, 'sh', ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, CLDIST_BENCH_NETNS: '1' },
  });
  if (result.error !== undefined) throw result.error;
  process.exit(result.status ?? 1);
}

const ignition = {
  ignition: { version: '3.3.0' },
  storage: { files: [{ path: '/etc/motd', mode: 420, contents: { source: 'data:,bench' } }] },
  passwd: { users: [{ name: 'core', sshAuthorizedKeys: [`ssh-ed25519 ${'A'.repeat(68)} bench`] }] },
};

const describe = (name: string, f: LoadFigures) => describeLoad(name, f, 44);

const server = await startIdleServe('cldist-bench-metadata-', ['--metadata-listen', `${metadataAddress}:80`]);
const clients: { token: RawClient[]; metadata: RawClient[] } = { token: [], metadata: [] };
try {
  const adminToken = await server.adminToken();
  const perClient = connections / instanceCount;
  for (let i = 0; i < instanceCount; i++) {
    const put = await fetch(`${server.url}/v1/instances/bench-${i}`, {
      method: 'PUT',
      headers: { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ ignition, ips: [instanceAddress(i)], hostname: `bench-${i}` }),
    });
    if (!put.ok) throw new Error(`registering bench-${i}: ${put.status} ${await put.text()}`);
    const { token } = (await put.json()) as { token: string };
    clients.token.push(
      createRawClient({
        url: `${server.url}/v1/instances/bench-${i}/ignition`,
        headers: {
          Authorization: `Bearer ${token}`,
          Accept: 'application/vnd.coreos.ignition+json;version=3.3.0, */*;q=0.1',
        },
        connections: perClient,
      }),
    );
    clients.metadata.push(
      createRawClient({
        url: `http://${metadataAddress}/openstack/latest/user_data`,
        headers: { Accept: 'application/vnd.coreos.ignition+json;version=3.3.0, */*;q=0.1' },
        connections: perClient,
        localAddress: instanceAddress(i),
      }),
    );
  }
  const pool = (list: RawClient[]) => list.map((client) => ({ client, connections: perClient }));
  // Warm-up: JIT, the record caches and every keep-alive socket, outside the figures.
  await saturate(pool(clients.token), 2);
  await saturate(pool(clients.metadata), 2);

  process.stdout.write(
    `${instanceCount} instances, ${connections} keep-alive connections, ${seconds} s per run, ${rounds} rounds; paced runs at ${rate} req/s\n`,
  );
  const results: Record<'tokenSat' | 'metaSat' | 'tokenPaced' | 'metaPaced', LoadFigures[]> = {
    tokenSat: [],
    metaSat: [],
    tokenPaced: [],
    metaPaced: [],
  };
  for (let round = 1; round <= rounds; round++) {
    const order = round % 2 === 1 ? (['token', 'metadata'] as const) : (['metadata', 'token'] as const);
    for (const route of order) {
      const figures = await saturate(pool(clients[route]), seconds);
      (route === 'token' ? results.tokenSat : results.metaSat).push(figures);
      process.stdout.write(`round ${round}  ${describe(`${route}, saturated`, figures)}\n`);
    }
    for (const route of order) {
      const figures = await paced(clients[route], rate, seconds);
      (route === 'token' ? results.tokenPaced : results.metaPaced).push(figures);
      process.stdout.write(`round ${round}  ${describe(`${route}, paced at ${rate} req/s`, figures)}\n`);
    }
  }
  const med = (list: LoadFigures[], pick: (f: LoadFigures) => number) => median(list.map(pick));
  const ratios = results.metaSat.map(
    (m, i) => m.requestsPerSecond / (results.tokenSat[i]?.requestsPerSecond ?? Number.NaN),
  );
  const ratio = median(ratios);
  const metaPacedP99 = med(results.metaPaced, (f) => f.p99Ms);
  const failures = Object.values(results)
    .flat()
    .reduce((n, f) => n + [...f.failures.values()].reduce((a, b) => a + b, 0), 0);
  process.stdout.write(
    [
      '',
      `medians over ${rounds} rounds`,
      `  token route     saturated ${med(results.tokenSat, (f) => f.requestsPerSecond).toFixed(0)} req/s (p50 ${med(results.tokenSat, (f) => f.p50Ms).toFixed(2)} ms, p99 ${med(results.tokenSat, (f) => f.p99Ms).toFixed(2)} ms); paced p50 ${med(results.tokenPaced, (f) => f.p50Ms).toFixed(2)} ms, p99 ${med(results.tokenPaced, (f) => f.p99Ms).toFixed(2)} ms`,
      `  metadata route  saturated ${med(results.metaSat, (f) => f.requestsPerSecond).toFixed(0)} req/s (p50 ${med(results.metaSat, (f) => f.p50Ms).toFixed(2)} ms, p99 ${med(results.metaSat, (f) => f.p99Ms).toFixed(2)} ms); paced p50 ${med(results.metaPaced, (f) => f.p50Ms).toFixed(2)} ms, p99 ${metaPacedP99.toFixed(2)} ms`,
      `  metadata/token throughput ratio (median of per-round ratios ${ratios.map((r) => r.toFixed(2)).join(', ')}): ${ratio.toFixed(2)}`,
      `  target ≥ 0.80 of the token route: ${ratio >= 0.8 ? 'met' : 'MISSED'}; p99 ≤ 25 ms at ${rate} req/s: ${metaPacedP99 <= 25 ? 'met' : 'MISSED'}; failed requests: ${failures}`,
      '',
    ].join('\n'),
  );
  if (ratio < 0.8 || metaPacedP99 > 25 || failures > 0) process.exitCode = 1;
} finally {
  await Promise.all([...clients.token, ...clients.metadata].map((client) => client.close()));
  await server.stop();
}
