import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { type CldistConfig, parseConfig } from '../../shared/config.ts';
import { sweepConfigBodies } from '../../shared/instances/body-sweep.ts';
import { InlineBodyDamagedError } from '../../shared/instances/inline-body.ts';
import { loadIdIndex, withRecordCache } from '../../shared/instances/record-cache.ts';
import { createDynamoInstanceRepository } from '../../shared/instances/repository.ts';
import {
  deleteInstance,
  describeInstance,
  fetchInstanceConfig,
  type InstanceServiceDeps,
  putInstanceConfig,
} from '../../shared/instances/service.ts';
import type { InstanceRecord } from '../../shared/instances/types.ts';
import { ledgerItems } from '../../shared/ledger/table.ts';
import { createLocalStore } from '../../shared/store/local-store.ts';
import { emulatorClients, freshTable } from '../support/emulators.ts';

const clients = emulatorClients();
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

const inline = parseConfig({});
const storeOnly = parseConfig({ instances: { inlineBodyMaxBytes: 0 } });

const ignition = (name: string, padding = 0) => ({
  ignition: { version: '3.3.0' },
  storage: {
    files: [{ path: '/etc/hostname', contents: { source: `data:,${name}${'x'.repeat(padding)}` } }],
  },
});

async function harness(cache: boolean) {
  const table = await freshTable(clients);
  await waitUntilTableExists(
    { client: clients.dynamodb, maxWaitTime: 10, minDelay: 0.05, maxDelay: 0.2 },
    { TableName: table },
  );
  const folder = await mkdtemp(join(tmpdir(), 'cldist-inline-'));
  const ledger = createDynamoInstanceRepository(clients.doc, { table, flushIntervalMs: 10 });
  const instances = cache ? withRecordCache(ledger, { index: await loadIdIndex(ledger) }) : ledger;
  let now = new Date();
  const deps: InstanceServiceDeps = { instances, bodies: createLocalStore(folder), clock: () => now };
  cleanups.push(async () => {
    await instances.close();
    await rm(folder, { recursive: true, force: true });
  });
  const put = async (id: string, body: unknown, config: CldistConfig = inline) =>
    putInstanceConfig({ id, body, text: JSON.stringify(body) }, deps, config);
  const fetchConfig = (id: string, token: string | undefined) =>
    fetchInstanceConfig(
      { id, kind: 'ignition', token, sourceIp: '10.0.0.1', userAgent: 'Ignition/2.14.0', consume: true },
      deps,
    );
  const rawItem = async (id: string) =>
    (await clients.doc.send(new GetCommand({ TableName: table, Key: ledgerItems.instance(id) }))).Item;
  const later = (ms: number) => {
    now = new Date(now.getTime() + ms);
  };
  return { table, folder, deps, put, fetchConfig, rawItem, later };
}

describe.each([false, true])('inline config bodies (record cache %s)', (cache) => {
  it('keeps a small body compressed in the ledger item, with no store object, and serves it as PUT', async () => {
    const h = await harness(cache);
    const body = ignition('small', 2000);
    const result = await h.put('small', { ignition: body });
    const text = Buffer.from(JSON.stringify(body));
    expect(await h.deps.bodies.list('instances/')).toEqual([]);
    expect(await readdir(h.folder)).toEqual([]);
    const item = await h.rawItem('small');
    expect(item?.bodyKey).toBeUndefined();
    const packed = item?.bodyZ;
    expect(packed).toBeInstanceOf(Uint8Array);
    expect((packed as Uint8Array).byteLength).toBeLessThan(text.byteLength / 4);
    expect(inflateRawSync(packed as Uint8Array).equals(text)).toBe(true);
    expect(item?.size).toBe(text.byteLength);
    const digest = createHash('sha256').update(text).digest('hex');
    expect(result.record.etag).toBe(`"${digest.slice(0, 32)}"`);
    const fetched = await h.fetchConfig('small', result.token);
    if (fetched.status !== 'ok') throw new Error(`not served: ${fetched.status}`);
    expect(Buffer.from(fetched.body).equals(text)).toBe(true);
    expect(fetched.etag).toBe(result.record.etag);
    const described = await describeInstance('small', h.deps);
    expect(JSON.stringify(described)).not.toMatch(/bodyZ|inlineBody|writeId|tokenHash/);
    expect(described.size).toBe(text.byteLength);
  });

  it('puts a body over the limit in the store, and still serves records that only have a body key', async () => {
    const h = await harness(cache);
    const big = await h.put('big', { ignition: ignition('big', 40 * 1024) });
    expect(big.record.inlineBody).toBeUndefined();
    expect(await h.deps.bodies.list('instances/big/')).toEqual([big.record.bodyKey]);
    expect((await h.rawItem('big'))?.bodyZ).toBeUndefined();
    expect((await h.fetchConfig('big', big.token)).status).toBe('ok');
    // A record as written before inline bodies: a body key, no write id, no inline body.
    const old = await h.put('old', { ignition: ignition('old') }, storeOnly);
    await clients.doc.send(
      new UpdateCommand({
        TableName: h.table,
        Key: ledgerItems.instance('old'),
        UpdateExpression: 'REMOVE writeId',
      }),
    );
    const reread = createDynamoInstanceRepository(clients.doc, { table: h.table });
    const record = await reread.get('old');
    await reread.close();
    expect(record?.writeId).toBeUndefined();
    expect(record?.inlineBody).toBeUndefined();
    const fetched = await h.fetchConfig('old', old.token);
    expect(fetched.status).toBe('ok');
  });

  it('replaces store to inline and back, leaving no body behind after the sweep', async () => {
    const h = await harness(cache);
    const first = await h.put('flip', { ignition: ignition('one', 40 * 1024) });
    const storedKey = first.record.bodyKey;
    expect(await h.deps.bodies.list('instances/flip/')).toEqual([storedKey]);
    const second = await h.put('flip', { ignition: ignition('two') });
    expect(second.record.bodyKey).toBe('');
    expect(second.record.inlineBody).toBeInstanceOf(Uint8Array);
    // The replaced body is unreferenced now; young, the sweep keeps it, old enough, removes it.
    expect(await sweepConfigBodies(h.deps)).toMatchObject({ removed: 0, young: 1 });
    h.later(3_600_000);
    expect(await sweepConfigBodies(h.deps)).toMatchObject({ removed: 1 });
    expect(await h.deps.bodies.list('instances/')).toEqual([]);
    const served = await h.fetchConfig('flip', second.token);
    if (served.status !== 'ok') throw new Error(served.status);
    expect(Buffer.from(served.body).toString()).toContain('data:,two');
    // And back: the new store body is the one the record points at, and the sweep keeps it.
    const third = await h.put('flip', { ignition: ignition('three', 40 * 1024) });
    expect(third.record.inlineBody).toBeUndefined();
    expect((await h.rawItem('flip'))?.bodyZ).toBeUndefined();
    h.later(3_600_000);
    expect(await sweepConfigBodies(h.deps)).toMatchObject({ removed: 0, young: 0 });
    expect(await h.deps.bodies.list('instances/')).toEqual([third.record.bodyKey]);
    const again = await h.fetchConfig('flip', third.token);
    if (again.status !== 'ok') throw new Error(again.status);
    expect(Buffer.from(again.body).toString()).toContain('data:,three');
    await deleteInstance('flip', h.deps);
    expect(await h.deps.bodies.list('instances/')).toEqual([]);
    expect(await h.rawItem('flip')).toBeUndefined();
  });

  it('deletes an inline instance with its item, and serves a one-time inline config exactly once', async () => {
    const h = await harness(cache);
    const once = await h.put('once', { ignition: ignition('once'), oneTime: true });
    const answers = await Promise.all(Array.from({ length: 6 }, () => h.fetchConfig('once', once.token)));
    expect(answers.filter((a) => a.status === 'ok')).toHaveLength(1);
    expect(answers.filter((a) => a.status === 'not-found')).toHaveLength(5);
    await deleteInstance('once', h.deps);
    expect(await h.rawItem('once')).toBeUndefined();
    expect((await h.fetchConfig('once', once.token)).status).toBe('not-found');
    expect(await h.deps.bodies.list('instances/')).toEqual([]);
  });

  it('refuses to serve an inline body that does not unpack, naming the instance', async () => {
    const h = await harness(cache);
    const result = await h.put('damaged', { ignition: ignition('damaged') });
    await clients.doc.send(
      new UpdateCommand({
        TableName: h.table,
        Key: ledgerItems.instance('damaged'),
        UpdateExpression: 'SET bodyZ = :junk',
        ExpressionAttributeValues: { ':junk': new Uint8Array([0xff, 0xff, 0xff, 0xff]) },
      }),
    );
    const fresh = createDynamoInstanceRepository(clients.doc, { table: h.table });
    cleanups.push(() => fresh.close());
    const deps = { ...h.deps, instances: fresh };
    const fetched = fetchInstanceConfig(
      {
        id: 'damaged',
        kind: 'ignition',
        token: result.token,
        sourceIp: '10.0.0.1',
        userAgent: 'x',
        consume: true,
      },
      deps,
    );
    await expect(fetched).rejects.toThrow(InlineBodyDamagedError);
    await expect(fetched).rejects.toThrow(/instance damaged .*PUT it again/);
  });
});

describe('a reservation ended by an inline PUT', () => {
  it('accepts its own write repeated (a retry whose answer was lost), and refuses a second write', async () => {
    const h = await harness(false);
    const { instances } = h.deps;
    const base: InstanceRecord = {
      id: 'r',
      kind: 'ignition',
      tokenHash: 't'.repeat(64),
      etag: '',
      bodyKey: '',
      size: 0,
      oneTime: false,
      createdAt: '2026-01-01T00:00:00.000Z',
      updatedAt: '2026-01-01T00:00:00.000Z',
    };
    const reserved = { ...base, reservedUntil: '2030-01-01T00:00:00.000Z' };
    await instances.put(reserved, undefined);
    const write = (writeId: string, byte: number): InstanceRecord => ({
      ...base,
      etag: `"${writeId}"`,
      size: 1,
      inlineBody: new Uint8Array([byte]),
      writeId,
    });
    await instances.put(write('first', 1), reserved);
    await instances.put(write('first', 1), reserved);
    await expect(instances.put(write('second', 2), reserved)).rejects.toThrow(/conflict|changed/i);
    expect((await instances.get('r'))?.writeId).toBe('first');
  });
});

describe('the instances config section', () => {
  it('defaults to 32 KiB inline and byte-bounded caches, and names a bad field', () => {
    expect(inline.instances).toEqual({
      inlineBodyMaxBytes: 32 * 1024,
      cacheBytes: {
        records: 32 << 20,
        addresses: 8 << 20,
        bodies: 32 << 20,
        boot: 8 << 20,
        merged: 16 << 20,
      },
    });
    expect(() => parseConfig({ instances: { inlineBodyMaxBytes: 1 << 20 } })).toThrow(
      /instances\.inlineBodyMaxBytes.*at most 131072/,
    );
    expect(() => parseConfig({ instances: { cacheBytes: { records: -1 } } })).toThrow(
      /instances\.cacheBytes\.records/,
    );
    expect(() => parseConfig({ instances: { cacheBytes: { record: 1 } } })).toThrow(/instances\.cacheBytes/);
  });
});
