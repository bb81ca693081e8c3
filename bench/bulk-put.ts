import { bulkBatchLines } from '../local/commands/instances-bulk.ts';
import { startBenchApi } from './local-api.ts';
import { median } from './support.ts';

/**
 * Registering instances in the single-machine shape (dynalite on disk in the same process, the record
 * cache, bodies in a local folder, @hono/node-server): `POST /v1/instances` with JSON lines, as
 * `cldist instances put-many` sends them (2,000 lines a request), against its peer in the same run, one
 * `PUT /v1/instances/{id}` per instance over a kept-alive connection. Each round registers `count` new ids
 * per method, the two methods alternating; medians over the rounds.
 *
 *   node --import tsx bench/bulk-put.ts [count=500] [rounds=5]
 */
const count = Number(process.argv[2] ?? 500);
const rounds = Number(process.argv[3] ?? 5);
const adminToken = 'bench-admin-token-0123456789abcdef0123';
const config = { ignition: { version: '3.4.0' }, passwd: { users: [{ name: 'core' }] } };

const benchApi = await startBenchApi('cldist-bench-bulk-', adminToken);
const { server } = benchApi;
const headers = { Authorization: `Bearer ${adminToken}` };

async function bulk(prefix: string): Promise<number> {
  const started = performance.now();
  for (let first = 0; first < count; first += bulkBatchLines) {
    const lines = [];
    for (let i = first; i < Math.min(count, first + bulkBatchLines); i++) {
      lines.push(JSON.stringify({ id: `${prefix}-${i}`, ignition: config }));
    }
    const response = await fetch(`${server.url}/v1/instances`, {
      method: 'POST',
      headers,
      body: lines.join('\n'),
    });
    const text = await response.text();
    if (!text.includes('"done":true')) throw new Error(`bulk request failed: ${text.slice(-300)}`);
  }
  return performance.now() - started;
}

async function single(prefix: string): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const response = await fetch(`${server.url}/v1/instances/${prefix}-${i}`, {
      method: 'PUT',
      headers,
      body: JSON.stringify({ ignition: config }),
    });
    if (response.status !== 201) throw new Error(`PUT answered ${response.status}`);
    await response.arrayBuffer();
  }
  return performance.now() - started;
}

const bulkMs: number[] = [];
const singleMs: number[] = [];
try {
  for (let round = 0; round < rounds; round++) {
    bulkMs.push(await bulk(`bulk${round}`));
    singleMs.push(await single(`single${round}`));
  }
  const perSecond = (ms: number) => Math.round((count / ms) * 1000);
  const b = median(bulkMs);
  const s = median(singleMs);
  process.stdout.write(
    `${count} instances per round, ${rounds} rounds (medians)\n` +
      `  POST /v1/instances (JSON lines, ${bulkBatchLines} a request): ${b.toFixed(0)} ms, ${perSecond(b)} instances/s\n` +
      `  PUT /v1/instances/{id}, one at a time:        ${s.toFixed(0)} ms, ${perSecond(s)} instances/s\n` +
      `  ratio (PUT time / bulk time): ${(s / b).toFixed(2)}\n`,
  );
} finally {
  await benchApi.close();
}
