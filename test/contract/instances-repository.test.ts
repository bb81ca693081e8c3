import { inflateRawSync } from 'node:zlib';
import { waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import {
  BatchWriteCommand,
  type DynamoDBDocumentClient,
  PutCommand,
  QueryCommand,
  ScanCommand,
} from '@aws-sdk/lib-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { InstanceConflictError } from '../../shared/instances/errors.ts';
import { loadIdIndex, withRecordCache } from '../../shared/instances/record-cache.ts';
import { createDynamoInstanceRepository } from '../../shared/instances/repository.ts';
import type { AuditEntry, InstanceRecord, InstanceRepository } from '../../shared/instances/types.ts';
import {
  instanceKeyParts,
  ledgerKeySchema as k,
  ledgerIndex,
  ledgerIndexEntry,
  ledgerItems,
  ledgerTtlAttribute,
} from '../../shared/ledger/table.ts';
import { emulatorClients, freshTable } from '../support/emulators.ts';

const clients = emulatorClients();
const open: InstanceRepository[] = [];

async function table(audit = false): Promise<string> {
  const name = await freshTable(clients, 'ledger', audit);
  await waitUntilTableExists(
    { client: clients.dynamodb, maxWaitTime: 10, minDelay: 0.05, maxDelay: 0.2 },
    { TableName: name },
  );
  return name;
}

function repository(name: string, flushIntervalMs = 60_000): InstanceRepository {
  const repo = createDynamoInstanceRepository(clients.doc, { table: name, flushIntervalMs });
  open.push(repo);
  return repo;
}

function record(id: string, tokenHash = 'a'.repeat(64)): InstanceRecord {
  return {
    id,
    kind: 'ignition',
    tokenHash,
    etag: '"e"',
    bodyKey: `instances/${id}/x.ign`,
    size: 10,
    oneTime: true,
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
  };
}

function entry(i: number): AuditEntry {
  const at = new Date(Date.UTC(2026, 0, 1, 0, 0, 0, i)).toISOString();
  return { at, route: 'ignition', sourceIp: '10.0.0.1', userAgent: `agent-${i}`, outcome: 'served' };
}

/** The audit items of one instance as they are stored. */
async function storedAudit(name: string, id: string): Promise<Record<string, unknown>[]> {
  const { Items = [] } = await clients.doc.send(
    new QueryCommand({
      TableName: name,
      KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :audit)',
      ExpressionAttributeNames: { '#pk': k.partitionKey, '#sk': k.sortKey },
      ExpressionAttributeValues: {
        ':pk': instanceKeyParts.partition(id),
        ':audit': instanceKeyParts.auditSortPrefix,
      },
    }),
  );
  return Items;
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((r) => r.close()));
});

describe('DynamoDB instance repository (dynalite)', () => {
  it('writes every queued audit entry on flush, grouped, and lists them newest first', async () => {
    const name = await table();
    const writer = repository(name);
    for (let i = 0; i < 1300; i++) writer.recordFetch(i % 2 === 0 ? 'even' : 'odd', entry(i));
    await writer.flush();
    const reader = repository(name);
    const odd = await reader.listAudit('odd', 1000);
    expect(odd).toHaveLength(650);
    expect(odd[0]).toEqual(entry(1299));
    expect(odd.at(-1)).toEqual(entry(1));
    expect(await reader.listAudit('even', 3)).toEqual([entry(1298), entry(1296), entry(1294)]);
  });

  it('stores audit entries compressed, and still reads older plain items and skips a corrupt one', async () => {
    const name = await table();
    const repo = repository(name);
    for (let i = 0; i < 300; i++) repo.recordFetch('z', entry(i));
    await repo.flush();
    const Items = await storedAudit(name, 'z');
    expect(Items).toHaveLength(1);
    const stored = Items[0]?.entriesZ as Uint8Array;
    expect(stored).toBeInstanceOf(Uint8Array);
    expect(stored.byteLength).toBeLessThan(
      JSON.stringify(Array.from({ length: 300 }, (_, i) => entry(i))).length / 4,
    );

    const legacy = {
      ...ledgerItems.instanceAudit('z', '2025-12-31T00:00:00.000Z#0001'),
      entries: JSON.stringify([entry(-5)]),
    };
    const corrupt = {
      ...ledgerItems.instanceAudit('z', '2025-12-30T00:00:00.000Z#0002'),
      entriesZ: new Uint8Array([1, 2, 3]),
    };
    await clients.doc.send(new PutCommand({ TableName: name, Item: legacy }));
    await clients.doc.send(new PutCommand({ TableName: name, Item: corrupt }));
    const listed = await repo.listAudit('z', 1000);
    expect(listed).toHaveLength(301);
    expect(listed[0]).toEqual(entry(299));
    expect(listed.at(-1)).toEqual(entry(-5));
  });

  it('stores the one entry of a single fetch as it is, without deflate', async () => {
    const name = await table();
    const repo = repository(name);
    repo.recordFetch('single', entry(7));
    await repo.flush();
    const Items = await storedAudit(name, 'single');
    expect(Items).toHaveLength(1);
    expect(Items[0]?.entriesZ).toBeUndefined();
    expect(JSON.parse(String(Items[0]?.entries))).toEqual([entry(7)]);
    expect(await repo.listAudit('single', 10)).toEqual([entry(7)]);
  });

  it('loses nothing on an orderly close', async () => {
    const name = await table();
    const writer = createDynamoInstanceRepository(clients.doc, { table: name, flushIntervalMs: 60_000 });
    writer.recordFetch('x', entry(1));
    writer.recordFetch('x', entry(2));
    await writer.close();
    expect(await repository(name).listAudit('x', 10)).toEqual([entry(2), entry(1)]);
  });

  it('flushes on its own within the interval', async () => {
    const name = await table();
    const writer = repository(name, 10);
    writer.recordFetch('x', entry(1));
    const reader = repository(name);
    await expect.poll(() => reader.listAudit('x', 10), { timeout: 5000, interval: 20 }).toEqual([entry(1)]);
  });

  it('consumes a one-time record exactly once, and not under a rotated token', async () => {
    const repo = repository(await table());
    await repo.put(record('once'), undefined);
    const results = await Promise.all(
      Array.from({ length: 10 }, () =>
        repo.consume('once', 'a'.repeat(64), new Date('2026-01-02T00:00:00Z')),
      ),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
    expect((await repo.get('once'))?.consumedAt).toBe('2026-01-02T00:00:00.000Z');
    await repo.put(record('rotated', 'b'.repeat(64)), undefined);
    expect(await repo.consume('rotated', 'a'.repeat(64), new Date())).toBe(false);
    expect(await repo.consume('missing', 'a'.repeat(64), new Date())).toBe(false);
  });

  it('deletes the record and its audit', async () => {
    const name = await table();
    const repo = repository(name);
    await repo.put(record('gone'), undefined);
    repo.recordFetch('gone', entry(1));
    await expect(repo.delete('gone', record('gone', 'f'.repeat(64)))).rejects.toThrow(InstanceConflictError);
    expect(await repo.get('gone')).toBeDefined();
    await repo.delete('gone', record('gone'));
    expect(await repo.get('gone')).toBeUndefined();
    expect(await repo.listAudit('gone', 10)).toEqual([]);
  });
});

describe('single-machine record cache over the ledger', () => {
  it('serves reads from memory but sees its own writes at once', async () => {
    const name = await table();
    const ledger = repository(name);
    const cached = withRecordCache(ledger);
    expect(await cached.get('n')).toBeUndefined();
    await cached.put(record('n'), undefined);
    expect((await cached.get('n'))?.tokenHash).toBe('a'.repeat(64));
    await cached.put(record('n', 'b'.repeat(64)), record('n'));
    expect((await cached.get('n'))?.tokenHash).toBe('b'.repeat(64));
    expect(await cached.consume('n', 'b'.repeat(64), new Date('2026-01-02T00:00:00Z'))).toBe(true);
    expect((await cached.get('n'))?.consumedAt).toBe('2026-01-02T00:00:00.000Z');
    expect(await cached.consume('n', 'b'.repeat(64), new Date())).toBe(false);
    await cached.delete('n', record('n', 'b'.repeat(64)));
    expect(await cached.get('n')).toBeUndefined();
    expect(await ledger.get('n')).toBeUndefined();
  });

  it('never keeps a read that raced with a write', async () => {
    const cached = withRecordCache(repository(await table()));
    const racing = cached.get('r');
    await cached.put(record('r', 'c'.repeat(64)), undefined);
    await racing;
    expect((await cached.get('r'))?.tokenHash).toBe('c'.repeat(64));
  });

  it('still lets exactly one of many concurrent consumers win', async () => {
    const cached = withRecordCache(repository(await table()));
    await cached.put(record('once'), undefined);
    const results = await Promise.all(
      Array.from({ length: 10 }, () => cached.consume('once', 'a'.repeat(64), new Date())),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
  });
});

describe('conditional record writes', () => {
  for (const cachedName of ['ledger', 'record cache over the ledger']) {
    const make = (name: string) =>
      cachedName === 'ledger' ? repository(name) : withRecordCache(repository(name));
    it(`lets exactly one of racing writes that read the same record win (${cachedName})`, async () => {
      const repo = make(await table());
      await repo.put(record('race'), undefined);
      const before = await repo.get('race');
      const writes = ['b', 'c', 'd', 'e'].map((c) => record('race', c.repeat(64)));
      const results = await Promise.allSettled(writes.map((w) => repo.put(w, before)));
      const won = results.filter((r) => r.status === 'fulfilled');
      expect(won).toHaveLength(1);
      for (const lost of results.filter((r) => r.status === 'rejected')) {
        expect(lost.reason).toBeInstanceOf(InstanceConflictError);
      }
      const winner = writes[results.findIndex((r) => r.status === 'fulfilled')];
      expect((await repo.get('race'))?.tokenHash).toBe(winner?.tokenHash);
    });

    it(`refuses a create over an existing record, and accepts its own write repeated (${cachedName})`, async () => {
      const repo = make(await table());
      await repo.put(record('c1'), undefined);
      await expect(repo.put(record('c1', 'b'.repeat(64)), undefined)).rejects.toThrow(/changed by another/);
      await repo.put(record('c1'), undefined);
      await repo.put(record('c1', 'b'.repeat(64)), record('c1'));
      await repo.put(record('c1', 'b'.repeat(64)), record('c1'));
      await expect(repo.put(record('c1', 'c'.repeat(64)), record('c1'))).rejects.toThrow(
        InstanceConflictError,
      );
    });
  }
});

describe('id listing, the id index and audit retention', () => {
  it('lists every id with a record, and not ids with only audit', async () => {
    const repo = repository(await table());
    for (let i = 0; i < 30; i++) await repo.put(record(`id-${i}`), undefined);
    repo.recordFetch('audit-only', entry(1));
    await repo.flush();
    const ids: string[] = [];
    for await (const page of repo.listIds()) ids.push(...page);
    expect(ids.sort()).toEqual(Array.from({ length: 30 }, (_, i) => `id-${i}`).sort());
  });

  it('answers unknown ids from the index without a ledger read, and keeps it current', async () => {
    const ledger = repository(await table());
    await ledger.put(record('known'), undefined);
    let reads = 0;
    const counting: InstanceRepository = {
      ...ledger,
      get: (id) => {
        reads++;
        return ledger.get(id);
      },
    };
    const cached = withRecordCache(counting, { index: await loadIdIndex(ledger) });
    expect(await cached.get('unknown-1')).toBeUndefined();
    expect(await cached.get('unknown-2')).toBeUndefined();
    expect(reads).toBe(0);
    expect((await cached.get('known'))?.id).toBe('known');
    expect(reads).toBe(1);
    await cached.put(record('new'), undefined);
    expect((await cached.get('new'))?.id).toBe('new');
    await cached.delete('new', record('new'));
    expect(await cached.get('new')).toBeUndefined();
    expect(reads).toBe(1);
  });

  it('stamps audit items with a TTL and removes whole days before a cutoff', async () => {
    const name = await table();
    const repo = createDynamoInstanceRepository(clients.doc, {
      table: name,
      flushIntervalMs: 60_000,
      auditRetentionDays: 30,
    });
    open.push(repo);
    const day = (d: number) => ({ ...entry(0), at: new Date(Date.UTC(2026, 0, d, 12)).toISOString() });
    for (const d of [1, 2, 3, 10]) {
      repo.recordFetch('x', day(d));
      await repo.flush();
    }
    const items = await clients.doc.send(
      new QueryCommand({
        TableName: name,
        KeyConditionExpression: '#pk = :pk',
        ExpressionAttributeNames: { '#pk': k.partitionKey },
        ExpressionAttributeValues: { ':pk': instanceKeyParts.partition('x') },
      }),
    );
    const ttls = (items.Items ?? []).map((item) => Number(item[ledgerTtlAttribute])).sort();
    expect(ttls[0]).toBe(Date.UTC(2026, 0, 31, 12) / 1000);
    expect((items.Items ?? []).every((item) => item[k.gsi1PartitionKey] === undefined)).toBe(true);
    const markers = await auditState(name);
    expect([...markers.marked].sort()).toEqual([...markers.audit].sort());
    expect(markers.markerTtls).toContain(Date.UTC(2026, 0, 31, 12) / 1000);
    expect(await repo.deleteAuditBefore(new Date(Date.UTC(2026, 0, 3, 23)), 5)).toBe(2);
    expect((await repo.listAudit('x', 10)).map((e) => e.at)).toEqual([day(10).at, day(3).at]);
    const after = await auditState(name);
    expect(after.markerDays.sort()).toEqual(['2026-01-03', '2026-01-10']);
  });

  it('writes no day markers where TTL expires audit (auditDayMarkers off, as the API Lambda runs)', async () => {
    const name = await table();
    const repo = createDynamoInstanceRepository(clients.doc, { table: name, auditDayMarkers: false });
    open.push(repo);
    for (let i = 0; i < 30; i++) repo.recordFetch(`host-${i}`, entry(i));
    await repo.flush();
    const state = await auditState(name);
    expect(state.audit).toHaveLength(30);
    expect(state.markerDays).toEqual([]);
  });

  it('still expires audit items written with a gsi1 day entry before the day markers', async () => {
    const name = await table();
    const repo = repository(name);
    const legacy = { ...entry(0), at: '2026-01-02T08:00:00.000Z' };
    await clients.doc.send(
      new PutCommand({
        TableName: name,
        Item: {
          ...ledgerItems.instanceAudit('old', `${legacy.at}#00000000`),
          ...ledgerIndexEntry(ledgerIndex.instanceAuditDay('2026-01-02'), `${legacy.at}#old`),
          entries: JSON.stringify([legacy]),
        },
      }),
    );
    repo.recordFetch('new', { ...entry(0), at: '2026-01-02T09:00:00.000Z' });
    await repo.flush();
    expect(await repo.listAudit('old', 10)).toEqual([legacy]);
    expect(await repo.deleteAuditBefore(new Date(Date.UTC(2026, 0, 3, 1)), 2)).toBe(2);
    expect(await repo.listAudit('old', 10)).toEqual([]);
    expect(await repo.listAudit('new', 10)).toEqual([]);
    expect(await auditState(name)).toEqual({ audit: [], marked: [], markerTtls: [], markerDays: [] });
  });

  it('a flush that fails half-way leaves every written audit item marked, and its retry adds no copies', async () => {
    const name = await table();
    let batchCalls = 0;
    const send = clients.doc.send.bind(clients.doc) as (command: unknown) => Promise<unknown>;
    // The second write round lands only its marker and three items, then the connection drops.
    const faulty = new Proxy(clients.doc, {
      get(target, prop) {
        if (prop !== 'send') return Reflect.get(target, prop, target);
        return async (command: unknown) => {
          if (command instanceof BatchWriteCommand && ++batchCalls === 2) {
            const requests = command.input.RequestItems?.[name] ?? [];
            await send(new BatchWriteCommand({ RequestItems: { [name]: requests.slice(0, 4) } }));
            throw Object.assign(new Error('socket hang up'), { name: 'TimeoutError', $retryable: {} });
          }
          return send(command);
        };
      },
    }) as DynamoDBDocumentClient;
    const repo = createDynamoInstanceRepository(faulty, { table: name, flushIntervalMs: 60_000 });
    open.push(repo);
    const ids = Array.from({ length: 60 }, (_, i) => `host-${i}`);
    for (const [i, id] of ids.entries()) repo.recordFetch(id, entry(i));
    await expect(repo.flush()).rejects.toThrow();
    const half = await auditState(name);
    expect(half.audit).toHaveLength(24 + 3);
    expect(half.audit.every((key) => half.marked.includes(key))).toBe(true);

    await repo.flush();
    const whole = await auditState(name);
    expect(whole.audit).toHaveLength(60);
    expect(whole.audit.every((key) => whole.marked.includes(key))).toBe(true);
    for (const [i, id] of ids.entries()) expect(await repo.listAudit(id, 10)).toEqual([entry(i)]);

    expect(await repo.deleteAuditBefore(new Date(Date.UTC(2026, 0, 2)), 1)).toBe(60);
    expect(await auditState(name)).toEqual({ audit: [], marked: [], markerTtls: [], markerDays: [] });
  });
});

/** The table's audit item keys, the keys its day markers list, and the markers' TTLs and days. */
async function auditState(name: string) {
  const { Items = [] } = await clients.doc.send(new ScanCommand({ TableName: name }));
  const audit: string[] = [];
  const marked: string[] = [];
  const markerTtls: number[] = [];
  const markerDays: string[] = [];
  for (const item of Items) {
    const pk = String(item[k.partitionKey]);
    const sk = String(item[k.sortKey]);
    if (sk.startsWith(instanceKeyParts.auditSortPrefix)) audit.push(`${pk} ${sk}`);
    if (pk.startsWith(instanceKeyParts.auditDayPartition(''))) {
      markerDays.push(pk.slice(instanceKeyParts.auditDayPartition('').length));
      markerTtls.push(Number(item[ledgerTtlAttribute]));
      const keys = JSON.parse(inflateRawSync(item.keysZ as Uint8Array).toString('utf8')) as string[][];
      marked.push(...keys.map(([p, s]) => `${p} ${s}`));
    }
  }
  return { audit, marked, markerTtls, markerDays };
}

describe('audit in a table of its own (one machine)', () => {
  /** A repository over `name` whose audit goes to `audit`, as `cldist serve` opens it. */
  function splitRepository(name: string, audit: string): InstanceRepository {
    const repo = createDynamoInstanceRepository(clients.doc, {
      table: name,
      auditTable: audit,
      flushIntervalMs: 60_000,
    });
    open.push(repo);
    return repo;
  }

  it('writes audit items and day markers there, none in the ledger table', async () => {
    const [name, audit] = await Promise.all([table(), table(true)]);
    const repo = splitRepository(name, audit);
    await repo.put(record('split'), undefined);
    repo.recordFetch('split', entry(1));
    await repo.flush();
    expect(await storedAudit(audit, 'split')).toHaveLength(1);
    expect(await storedAudit(name, 'split')).toEqual([]);
    const { Items: inLedger = [] } = await clients.doc.send(new ScanCommand({ TableName: name }));
    expect(inLedger.map((item) => item[k.sortKey])).toEqual([instanceKeyParts.recordSortKey]);
    expect((await repo.listAudit('split', 10)).map((e) => e.userAgent)).toEqual(['agent-1']);
  });

  it('still lists, sweeps and deletes the audit an earlier version wrote to the ledger table', async () => {
    const [name, audit] = await Promise.all([table(), table(true)]);
    const before = repository(name);
    for (const id of ['moved', 'swept', 'gone']) await before.put(record(id), undefined);
    before.recordFetch('moved', entry(1));
    before.recordFetch('swept', entry(2));
    await before.flush();
    const repo = splitRepository(name, audit);
    repo.recordFetch('moved', entry(3));
    await repo.flush();
    expect((await repo.listAudit('moved', 10)).map((e) => e.userAgent)).toEqual(['agent-3', 'agent-1']);
    expect((await repo.listAudit('moved', 1)).map((e) => e.userAgent)).toEqual(['agent-3']);

    // Every entry is of 2026-01-01: a cutoff a day later removes that day from both tables.
    repo.recordFetch('swept', entry(4));
    expect(await repo.deleteAuditBefore(new Date('2026-01-02T12:00:00Z'), 2)).toBe(4);
    expect(await repo.listAudit('swept', 10)).toEqual([]);
    expect(await repo.listAudit('moved', 10)).toEqual([]);

    before.recordFetch('gone', entry(5));
    await before.flush();
    repo.recordFetch('gone', entry(6));
    await repo.delete('gone', record('gone'));
    expect(await storedAudit(name, 'gone')).toEqual([]);
    expect(await storedAudit(audit, 'gone')).toEqual([]);
    expect(await repo.get('gone')).toBeUndefined();
  });
});
