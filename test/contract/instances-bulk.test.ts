import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateTableCommand, waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { createDynalite } from '../../local/dynalite-transactions.cjs';
import { createApiApp } from '../../shared/api/app.ts';
import { type RunningServer, serveNode } from '../../shared/api/node-server.ts';
import { makeAwsClients } from '../../shared/aws-clients.ts';
import { parseConfig } from '../../shared/config.ts';
import { loadIdIndex, withRecordCache } from '../../shared/instances/record-cache.ts';
import { createDynamoInstanceRepository } from '../../shared/instances/repository.ts';
import { putInstanceConfig } from '../../shared/instances/service.ts';
import type { InstanceRepository } from '../../shared/instances/types.ts';
import { ledgerTableInput } from '../../shared/ledger/table.ts';
import { createLocalStore } from '../../shared/store/local-store.ts';

/**
 * The bulk path against a ledger of its own (dynalite with TransactWriteItems, on disk), so a test can
 * stop the ledger half-way through a run and open the same files again to see what was really written.
 */
const adminToken = 'bulk-test-admin-token-0123456789abcdef';
const admin = { Authorization: `Bearer ${adminToken}` };
const table = 'cldist-ledger';
const config = parseConfig({});
const ignition = {
  ignition: { version: '3.3.0' },
  storage: { files: [{ path: '/etc/hostname', mode: 420, contents: { source: 'data:,node' } }] },
};

interface Ledger {
  endpoint: string;
  stop(): Promise<void>;
}

async function startLedger(path: string): Promise<Ledger> {
  const server: Server = createDynalite({ path, createTableMs: 0 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  let stopped: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
      return stopped;
    },
  };
}

/** The record repository over a ledger folder, as `cldist serve` builds it (record cache and id index). */
async function openRepository(endpoint: string, create: boolean): Promise<InstanceRepository> {
  const clients = makeAwsClients({ dynamodb: endpoint });
  if (create) {
    await clients.dynamodb.send(new CreateTableCommand(ledgerTableInput(table)));
    await waitUntilTableExists(
      { client: clients.dynamodb, maxWaitTime: 10, minDelay: 0.05, maxDelay: 0.2 },
      { TableName: table },
    );
  }
  const ledger = createDynamoInstanceRepository(clients.doc, { table, flushIntervalMs: 10 });
  return withRecordCache(ledger, { index: await loadIdIndex(ledger) });
}

interface Api {
  url: string;
  instances: InstanceRepository;
  close(): Promise<void>;
}

async function startApi(instances: InstanceRepository, bodies: string): Promise<Api> {
  const app = createApiApp(
    {
      instances,
      bodies: createLocalStore(bodies),
      clock: () => new Date(),
      adminAuth: { kind: 'bearer', token: adminToken },
    },
    config,
  );
  const server: RunningServer = await serveNode(app, { host: '127.0.0.1', port: 0 });
  return {
    url: server.url,
    instances,
    async close() {
      await server.close();
      await instances.close().catch(() => undefined);
    },
  };
}

function bulkBody(prefix: string, count: number): string {
  return Array.from({ length: count }, (_, i) =>
    JSON.stringify({ id: `${prefix}-${i + 1}`, ...ignition }),
  ).join('\n');
}

function answerLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

async function everyId(instances: InstanceRepository): Promise<string[]> {
  const ids: string[] = [];
  for await (const page of instances.listIds()) ids.push(...page);
  return ids.sort();
}

/** Each acknowledged line's token fetches its config, through a fresh API over what is on disk. */
async function expectServed(api: Api, acked: Record<string, unknown>[]): Promise<void> {
  for (const answer of acked) {
    const response = await fetch(
      `${api.url}/v1/instances/${String(answer.id)}/ignition?token=${String(answer.token)}`,
      {
        headers: { 'User-Agent': 'Ignition/test' },
      },
    );
    expect(response.status, String(answer.id)).toBe(200);
    expect(await response.json()).toEqual(ignition);
  }
}

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

async function workspace(): Promise<{ dir: string; ledgerPath: string; bodies: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'cldist-bulk-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return { dir, ledgerPath: join(dir, 'ledger'), bodies: join(dir, 'configs') };
}

describe('bulk registration (POST /v1/instances) with batched ledger writes', () => {
  it('when the ledger stops during the third batch, every acknowledged line is registered with a working token, and nothing else', async () => {
    const { ledgerPath, bodies } = await workspace();
    const ledger = await startLedger(ledgerPath);
    cleanups.push(() => ledger.stop());
    const repository = await openRepository(ledger.endpoint, true);
    let batches = 0;
    const failing: InstanceRepository = {
      ...repository,
      async putBatch(entries) {
        batches++;
        if (batches === 3) await ledger.stop();
        return repository.putBatch(entries);
      },
    };
    const api = await startApi(failing, bodies);
    const answer = answerLines(
      await (
        await fetch(`${api.url}/v1/instances`, { method: 'POST', headers: admin, body: bulkBody('n', 250) })
      ).text(),
    );
    await api.close();

    const acked = answer.filter((line) => typeof line.token === 'string');
    expect(acked.map((line) => line.line)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(answer.at(-1)).toMatchObject({
      line: 201,
      id: 'n-201',
      error: { code: 'unavailable', message: expect.stringContaining('retry from this line') },
    });
    expect(answer.some((line) => line.done === true)).toBe(false);

    const reopened = await startLedger(ledgerPath);
    cleanups.push(() => reopened.stop());
    const after = await startApi(await openRepository(reopened.endpoint, false), bodies);
    cleanups.push(() => after.close());
    expect(await everyId(after.instances)).toEqual(acked.map((line) => String(line.id)).sort());
    await expectServed(after, acked);
  });

  it('stops at a line another writer changed between the read and the transaction, naming it, and keeps the lines before it', async () => {
    const { ledgerPath, bodies } = await workspace();
    const ledger = await startLedger(ledgerPath);
    cleanups.push(() => ledger.stop());
    const repository = await openRepository(ledger.endpoint, true);
    const deps = { instances: repository, bodies: createLocalStore(bodies), clock: () => new Date() };
    let rival: string | undefined;
    const racing: InstanceRepository = {
      ...repository,
      async getMany(ids) {
        const found = await repository.getMany(ids);
        // Another admin registers line 150's id right after the bulk run read it as free.
        if (ids.includes('c-150')) {
          rival = (await putInstanceConfig({ id: 'c-150', body: ignition }, deps, config)).token;
        }
        return found;
      },
    };
    const api = await startApi(racing, bodies);
    cleanups.push(() => api.close());
    const answer = answerLines(
      await (
        await fetch(`${api.url}/v1/instances`, { method: 'POST', headers: admin, body: bulkBody('c', 250) })
      ).text(),
    );
    const acked = answer.filter((line) => typeof line.token === 'string');
    expect(acked.map((line) => line.line)).toEqual(Array.from({ length: 149 }, (_, i) => i + 1));
    expect(answer.at(-1)).toMatchObject({ line: 150, id: 'c-150', error: { code: 'conflict' } });
    expect(await everyId(repository)).toEqual([...acked.map((line) => String(line.id)), 'c-150'].sort());
    await expectServed(api, acked);
    await expectServed(api, [{ id: 'c-150', token: rival }]);
  });

  it('acknowledges a batch while the rest of the request is still being sent', async () => {
    const { ledgerPath, bodies } = await workspace();
    const ledger = await startLedger(ledgerPath);
    cleanups.push(() => ledger.stop());
    const api = await startApi(await openRepository(ledger.endpoint, true), bodies);
    cleanups.push(() => api.close());
    const acked: Record<string, unknown>[] = [];
    const done = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const req = request(`${api.url}/v1/instances`, { method: 'POST', headers: admin }, (res) => {
        let pending = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          pending += chunk;
          for (let at = pending.indexOf('\n'); at !== -1; at = pending.indexOf('\n')) {
            const line = JSON.parse(pending.slice(0, at)) as Record<string, unknown>;
            pending = pending.slice(at + 1);
            if (line.done === true) resolve(line);
            else if (line.error !== undefined) reject(new Error(JSON.stringify(line)));
            else acked.push(line);
            // The second half goes only once the first is acknowledged: a server that waited for the
            // whole request would never answer, and the test would time out.
            if (acked.length === 100 && line.line === 100)
              req.end(bulkBody('s', 200).split('\n').slice(100).join('\n'));
          }
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.write(bulkBody('s', 100));
      req.write('\n');
    });
    expect(done).toEqual({ done: true, registered: 200 });
    expect(acked.map((line) => line.id)).toEqual(Array.from({ length: 200 }, (_, i) => `s-${i + 1}`));
  });

  it('keeps line order when lines claim addresses, and ends at a line whose address another instance holds', async () => {
    const { ledgerPath, bodies } = await workspace();
    const ledger = await startLedger(ledgerPath);
    cleanups.push(() => ledger.stop());
    const repository = await openRepository(ledger.endpoint, true);
    const deps = { instances: repository, bodies: createLocalStore(bodies), clock: () => new Date() };
    await putInstanceConfig({ id: 'holder', body: { ignition, ips: ['10.0.0.9'] } }, deps, config);
    const api = await startApi(repository, bodies);
    cleanups.push(() => api.close());
    const body = [
      { id: 'a-1' },
      { id: 'a-2' },
      { id: 'a-3', ips: ['10.0.0.3'] },
      { id: 'a-4' },
      { id: 'a-5', ips: ['10.0.0.9'] },
      { id: 'a-6' },
    ]
      .map((line) => JSON.stringify({ ...line, ignition }))
      .join('\n');
    const answer = answerLines(
      await (await fetch(`${api.url}/v1/instances`, { method: 'POST', headers: admin, body })).text(),
    );
    expect(answer.map((line) => [line.line, line.id])).toEqual([
      [1, 'a-1'],
      [2, 'a-2'],
      [3, 'a-3'],
      [4, 'a-4'],
      [5, 'a-5'],
    ]);
    expect(answer.at(-1)).toMatchObject({ error: { code: 'address-in-use' } });
    await expectServed(api, answer.slice(0, 4));
    expect(await repository.instanceAtAddress('10.0.0.3')).toBe('a-3');
    expect(await repository.instanceAtAddress('10.0.0.9')).toBe('holder');
    expect(await everyId(repository)).toEqual(['a-1', 'a-2', 'a-3', 'a-4', 'holder']);
  });
});
