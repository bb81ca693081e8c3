import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { createRawClient, type RawClient, serialisePost } from '../test/support/raw-http-client.ts';
import { describeLoad, type LoadFigures, paced, saturate } from './load.ts';
import { median, startIdleServe } from './support.ts';

/**
 * Omaha update checks (`POST /v1/update/`) side by side with the instance config route
 * (`GET /v1/instances/{id}/ignition`), against one `cldist serve` in the same run, with the fleet being
 * recorded: every check comes from one of `--machines` distinct machine ids (10,000 by default), in
 * update_engine's request shape, so the recorder coalesces and writes a realistic number of machines.
 *
 * Per round: a saturated closed-loop run of each route (order alternating between rounds), then an
 * open-loop run of each paced at `--rate`. Both routes use the same raw keep-alive client
 * (test/support/raw-http-client.ts). Figures are medians over the rounds; the ratio is the median of the
 * per-round ratios. At the end the fleet view is read back: every machine must have been recorded.
 *
 *   npm run bench:omaha -- [--seconds 10] [--rounds 3] [--connections 32] [--machines 10000] [--rate 2000]
 */
const { values: flags } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '32' },
    machines: { type: 'string', default: '10000' },
    rate: { type: 'string', default: '2000' },
  },
});
const seconds = Number(flags.seconds);
const rounds = Number(flags.rounds);
const connections = Number(flags.connections);
const machines = Number(flags.machines);
const rate = Number(flags.rate);
for (const [name, value] of Object.entries({ seconds, rounds, connections, machines, rate })) {
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive whole number`);
}

/** An update check as update_engine sends it (the shape of flatcar/ue-rs's request test data). */
function updateCheck(n: number): Buffer {
  const machineId = n.toString(16).padStart(32, '0');
  const bootId = `{${(n * 7919).toString(16).padStart(8, '0')}-ad3e-4eb7-a4c2-ca0c0e31ec84}`;
  return Buffer.from(
    `<?xml version="1.0" encoding="UTF-8"?>
<request protocol="3.0" version="update_engine-0.4.10" updaterversion="update_engine-0.4.10" installsource="scheduler" ismachine="1">
  <os version="Chateau" platform="CoreOS" sp="4081.2.0_x86_64"></os>
  <app appid="{e96281a6-d1af-4bde-9a0a-97b76e56dc57}" version="4081.2.0" track="stable" bootid="${bootId}" oem="openstack" oemversion="0.1.1-r1" alephversion="4081.2.0" machineid="${machineId}" lang="en-US" board="amd64-usr" hardware_class="" delta_okay="false" >
    <ping active="1"></ping>
    <updatecheck></updatecheck>
  </app>
</request>
`,
    'utf8',
  );
}

const describe = (name: string, f: LoadFigures) => describeLoad(name, f, 40);

const server = await startIdleServe('cldist-bench-omaha-');
const clients: RawClient[] = [];
try {
  const adminToken = await server.adminToken();
  const admin = { Authorization: `Bearer ${adminToken}` };
  const put = await fetch(`${server.url}/v1/instances/bench-0`, {
    method: 'PUT',
    headers: { ...admin, 'Content-Type': 'application/json' },
    body: JSON.stringify({ ignition: { ignition: { version: '3.3.0' } } }),
  });
  if (!put.ok) throw new Error(`registering bench-0: ${put.status} ${await put.text()}`);
  const { token } = (await put.json()) as { token: string };

  const omahaUrl = new URL(`${server.url}/v1/update/`);
  const probe = await fetch(omahaUrl, {
    method: 'POST',
    headers: { 'Content-Type': 'text/xml' },
    body: updateCheck(0).toString('utf8'),
  });
  const probeText = await probe.text();
  if (probe.status !== 200 || !probeText.includes('<response')) {
    throw new Error(
      `POST /v1/update/ answered ${probe.status} without an Omaha response: this build has no Omaha endpoint yet (${probeText.slice(0, 120)})`,
    );
  }
  const requests = Array.from({ length: machines }, (_, n) =>
    serialisePost(
      omahaUrl,
      { 'Content-Type': 'text/xml', 'User-Agent': 'update_engine/0.4.10' },
      updateCheck(n),
    ),
  );
  const omaha = createRawClient({ url: omahaUrl, connections, requests });
  const config = createRawClient({
    url: `${server.url}/v1/instances/bench-0/ignition`,
    headers: {
      Authorization: `Bearer ${token}`,
      Accept: 'application/vnd.coreos.ignition+json;version=3.3.0, */*;q=0.1',
    },
    connections,
  });
  clients.push(omaha, config);
  const routes = { omaha, config } as const;
  // Warm-up: JIT, caches and every keep-alive socket, outside the figures.
  await saturate([{ client: omaha, connections }], 2);
  await saturate([{ client: config, connections }], 2);

  process.stdout.write(
    `${machines} machine ids, ${connections} keep-alive connections, ${seconds} s per run, ${rounds} rounds; paced runs at ${rate} req/s; load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}\n`,
  );
  const results = {
    omahaSat: [] as LoadFigures[],
    configSat: [] as LoadFigures[],
    omahaPaced: [] as LoadFigures[],
    configPaced: [] as LoadFigures[],
  };
  for (let round = 1; round <= rounds; round++) {
    const order = round % 2 === 1 ? (['omaha', 'config'] as const) : (['config', 'omaha'] as const);
    for (const route of order) {
      const figures = await saturate([{ client: routes[route], connections }], seconds);
      (route === 'omaha' ? results.omahaSat : results.configSat).push(figures);
      process.stdout.write(`round ${round}  ${describe(`${route}, saturated`, figures)}\n`);
    }
    for (const route of order) {
      const figures = await paced([routes[route]], rate, seconds);
      (route === 'omaha' ? results.omahaPaced : results.configPaced).push(figures);
      process.stdout.write(`round ${round}  ${describe(`${route}, paced at ${rate} req/s`, figures)}\n`);
    }
  }

  // Every machine recorded: the fleet view counts them once the recorder's interval has passed.
  const deadline = performance.now() + 60_000;
  let recorded = 0;
  while (performance.now() < deadline) {
    const fleet = (await (await fetch(`${server.url}/v1/fleet?limit=1`, { headers: admin })).json()) as {
      counts: { total: number };
    };
    recorded = fleet.counts.total;
    if (recorded >= machines) break;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }

  const med = (list: LoadFigures[], pick: (f: LoadFigures) => number) => median(list.map(pick));
  const ratios = results.omahaSat.map(
    (o, i) => o.requestsPerSecond / (results.configSat[i]?.requestsPerSecond ?? Number.NaN),
  );
  const omahaSat = med(results.omahaSat, (f) => f.requestsPerSecond);
  const omahaPacedP99 = med(results.omahaPaced, (f) => f.p99Ms);
  const omahaPacedRate = med(results.omahaPaced, (f) => f.requestsPerSecond);
  const failures = Object.values(results)
    .flat()
    .reduce((n, f) => n + [...f.failures.values()].reduce((a, b) => a + b, 0), 0);
  const met = omahaSat >= 2000 && omahaPacedRate >= 0.98 * rate && omahaPacedP99 <= 25;
  process.stdout.write(
    [
      '',
      `medians over ${rounds} rounds`,
      `  config route  saturated ${med(results.configSat, (f) => f.requestsPerSecond).toFixed(0)} req/s (p50 ${med(results.configSat, (f) => f.p50Ms).toFixed(2)} ms, p99 ${med(results.configSat, (f) => f.p99Ms).toFixed(2)} ms); paced p50 ${med(results.configPaced, (f) => f.p50Ms).toFixed(2)} ms, p99 ${med(results.configPaced, (f) => f.p99Ms).toFixed(2)} ms`,
      `  omaha route   saturated ${omahaSat.toFixed(0)} req/s (p50 ${med(results.omahaSat, (f) => f.p50Ms).toFixed(2)} ms, p99 ${med(results.omahaSat, (f) => f.p99Ms).toFixed(2)} ms); paced ${omahaPacedRate.toFixed(0)} req/s, p50 ${med(results.omahaPaced, (f) => f.p50Ms).toFixed(2)} ms, p99 ${omahaPacedP99.toFixed(2)} ms`,
      `  omaha/config throughput ratio (median of per-round ratios ${ratios.map((r) => r.toFixed(2)).join(', ')}): ${median(ratios).toFixed(2)}`,
      `  machines in the fleet view: ${recorded} of ${machines}`,
      `  target ≥ 2000 checks/s and p99 ≤ 25 ms at ${rate} req/s with the fleet recorded: ${met && recorded >= machines ? 'met' : 'MISSED'}; failed requests: ${failures}`,
      '',
    ].join('\n'),
  );
  if (!met || recorded < machines || failures > 0) process.exitCode = 1;
} finally {
  await Promise.all(clients.map((client) => client.close()));
  await server.stop();
}
