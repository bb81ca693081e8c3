import { randomBytes } from 'node:crypto';
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DeleteTableCommand, DescribeTableCommand, waitUntilTableNotExists } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, GetCommand, PutCommand, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LedgerStandIn, startLedgerStandIn } from '../../local/emulators.ts';
import type { LedgerThreadEvent } from '../../local/runtime/ledger-thread.ts';
import { parseConfig } from '../../shared/config.ts';
import { TransientError } from '../../shared/errors.ts';
import { ledgerCall } from '../../shared/instances/dynamo-support.ts';
import { ledgerIndexEntry, ledgerIndexListing, ledgerKey } from '../../shared/ledger/table.ts';
import { tempDir } from '../e2e/serve-harness.ts';

/**
 * The single-machine ledger (dynalite on its own thread, with LevelDB on disk): its direct item read
 * answers as GetItem does, and its queries let go of what they read.
 */
const config = parseConfig({}, 'test config');
let dir = '';
let ledger: LedgerStandIn;

beforeAll(async () => {
  dir = await tempDir('ledger-stand-in');
  ledger = await startLedgerStandIn({ ledgerPath: join(dir, 'ledger'), config });
});

afterAll(async () => {
  await ledger?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('the direct item read', () => {
  it('gives what GetItem gives, binary as bytes of its own', async () => {
    const item = {
      ...ledgerKey('direct#one', 'meta'),
      text: 'héllo',
      count: 42,
      ratio: 0.5,
      flag: true,
      none: null,
      bytes: new Uint8Array([0, 1, 2, 250, 255]),
      list: ['a', 1, { inner: new Uint8Array([7]) }],
      map: { nested: { deep: 'yes' }, bin: new Uint8Array([9, 9]) },
      names: new Set(['x', 'y']),
    };
    await ledger.clients.doc.send(new PutCommand({ TableName: ledger.tableName, Item: item }));
    const viaSdk = await ledger.clients.doc.send(
      new GetCommand({
        TableName: ledger.tableName,
        Key: ledgerKey('direct#one', 'meta'),
        ConsistentRead: true,
      }),
    );
    const direct = await ledger.thread.getItem(ledger.tableName, ledgerKey('direct#one', 'meta'));
    expect(direct).toEqual(viaSdk.Item);
    const bytes = direct?.bytes;
    expect(bytes).toBeInstanceOf(Uint8Array);
    expect(bytes instanceof Uint8Array && bytes.buffer.byteLength).toBe(5);
  });

  it('answers undefined for an item that is not there', async () => {
    await expect(
      ledger.thread.getItem(ledger.tableName, ledgerKey('direct#none', 'meta')),
    ).resolves.toBeUndefined();
  });

  it('fails as the SDK would for a table that is not there: not retryable', async () => {
    const failure = await ledger.thread
      .getItem('no-such-table', ledgerKey('a', 'b'))
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(Error);
    expect((failure as Error).name).toBe('ResourceNotFoundException');
    expect((failure as { $metadata: { httpStatusCode?: number } }).$metadata.httpStatusCode).toBe(400);
    const mapped = await ledgerCall('get', () =>
      ledger.thread.getItem('no-such-table', ledgerKey('a', 'b')),
    ).catch((error: unknown) => error);
    expect(mapped).not.toBeInstanceOf(TransientError);
  });
});

describe('the direct batch write', () => {
  it('puts and deletes as BatchWriteItem does', async () => {
    const { doc } = ledger.clients;
    const table = ledger.tableName;
    await doc.send(new PutCommand({ TableName: table, Item: { ...ledgerKey('write#gone', 'meta'), v: 1 } }));
    await ledger.thread.writeItems(table, [
      {
        PutRequest: {
          Item: {
            ...ledgerKey('write#new', 'meta'),
            v: 2,
            b: new Uint8Array([3]),
            m: { in: new Uint8Array([4]) },
            l: [new Uint8Array([5])],
            none: undefined,
          },
        },
      },
      { DeleteRequest: { Key: ledgerKey('write#gone', 'meta') } },
    ]);
    const read = (pk: string) =>
      doc.send(new GetCommand({ TableName: table, Key: ledgerKey(pk, 'meta'), ConsistentRead: true }));
    expect((await read('write#new')).Item).toEqual({
      ...ledgerKey('write#new', 'meta'),
      v: 2,
      b: new Uint8Array([3]),
      m: { in: new Uint8Array([4]) },
      l: [new Uint8Array([5])],
    });
    expect((await read('write#gone')).Item).toBeUndefined();
  });

  it('replaces an indexed item with its index entries, so a replaced listing entry goes', async () => {
    const { doc } = ledger.clients;
    const table = ledger.tableName;
    const key = ledgerKey('relist#one', 'meta');
    const listing = async () =>
      (await doc.send(new QueryCommand({ TableName: table, ...ledgerIndexListing('relist') }))).Items;
    await ledger.thread.writeItems(table, [
      { PutRequest: { Item: { ...key, ...ledgerIndexEntry('relist', 'a'), v: 1 } } },
    ]);
    expect(await listing()).toEqual([{ ...key, ...ledgerIndexEntry('relist', 'a'), v: 1 }]);
    await ledger.thread.writeItems(table, [{ PutRequest: { Item: { ...key, v: 2 } } }]);
    expect(await listing()).toEqual([]);
    await expect(ledger.thread.getItem(table, key)).resolves.toEqual({ ...key, v: 2 });
  });

  it('writes to the audit table, which has no index, as BatchWriteItem does', async () => {
    const { doc } = ledger.clients;
    const table = ledger.auditTableName;
    const described = await ledger.clients.dynamodb.send(new DescribeTableCommand({ TableName: table }));
    expect(described.Table?.GlobalSecondaryIndexes).toBeUndefined();
    const key = ledgerKey('audit#one', 'a');
    await ledger.thread.writeItems(table, [
      { PutRequest: { Item: { ...key, v: 1, b: new Uint8Array([1]) } } },
    ]);
    await ledger.thread.writeItems(table, [{ PutRequest: { Item: { ...key, v: 2 } } }]);
    const read = await doc.send(new GetCommand({ TableName: table, Key: key, ConsistentRead: true }));
    expect(read.Item).toEqual({ ...key, v: 2 });
    await ledger.thread.writeItems(table, [{ DeleteRequest: { Key: key } }]);
    await expect(ledger.thread.getItem(table, key)).resolves.toBeUndefined();
  });

  it('refuses an item without its key as the SDK would: not retryable, nothing written', async () => {
    const table = ledger.tableName;
    const refused = ledgerCall('batch write', () =>
      ledger.thread.writeItems(table, [
        { PutRequest: { Item: { ...ledgerKey('write#fine', 'meta') } } },
        { PutRequest: { Item: { v: 1 } } },
      ]),
    ).catch((error: unknown) => error);
    const error = await refused;
    expect(error).toMatchObject({ name: 'ValidationException', $metadata: { httpStatusCode: 400 } });
    expect(error).not.toBeInstanceOf(TransientError);
    await expect(ledger.thread.getItem(table, ledgerKey('write#fine', 'meta'))).resolves.toBeUndefined();
  });
});

async function tableFileBytes(path: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(path)) {
    // A file compaction deletes between the listing and the stat counts for nothing.
    if (name.endsWith('.ldb')) total += (await stat(join(path, name)).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

describe('queries on the ledger', () => {
  it('do not keep the table files that compaction replaced', async () => {
    const { doc } = ledger.clients;
    const table = ledger.tableName;
    // Twenty items of 200 KiB, rewritten sixteen times: about 64 MiB of writes over about 4 MiB of data,
    // so LevelDB compacts many times, with a Query and a Scan started on each generation of files.
    const items = 20;
    const rounds = 16;
    for (let round = 0; round < rounds; round++) {
      for (let at = 0; at < items; at += 10) {
        const puts = Array.from({ length: 10 }, (_, i) => ({
          PutRequest: { Item: { ...ledgerKey(`churn#${at + i}`, 'meta'), blob: randomBytes(200 * 1024) } },
        }));
        const written = await doc.send(new BatchWriteCommand({ RequestItems: { [table]: puts } }));
        expect(written.UnprocessedItems?.[table] ?? []).toEqual([]);
      }
      await doc.send(
        new QueryCommand({
          TableName: table,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': 'churn#0' },
          Limit: 1,
        }),
      );
      await doc.send(new ScanCommand({ TableName: table, Limit: 1 }));
    }
    // What a pinned file set would hold: every generation written. What LevelDB keeps once it has
    // compacted: the live data, a few level-0 files and the write-ahead log, well under half of that.
    const written = items * rounds * 200 * 1024;
    const deadline = Date.now() + 60_000;
    let bytes = await tableFileBytes(join(dir, 'ledger'));
    while (bytes > written / 2 && Date.now() < deadline) {
      // LevelDB deletes replaced files when a background compaction ends; a small write lets it finish.
      await doc.send(new PutCommand({ TableName: table, Item: { ...ledgerKey('churn#tick', 'meta') } }));
      await new Promise((resolve) => setImmediate(resolve));
      bytes = await tableFileBytes(join(dir, 'ledger'));
    }
    expect(bytes).toBeLessThan(written / 2);
  });
});

describe('a large load', () => {
  it('is compacted into one level once writes settle, every item still there', async () => {
    const loadDir = await tempDir('ledger-compaction');
    let compacted: (event: LedgerThreadEvent) => void = () => {};
    const done = new Promise<LedgerThreadEvent>((resolve) => {
      compacted = resolve;
    });
    const loaded = await startLedgerStandIn({
      ledgerPath: join(loadDir, 'ledger'),
      config,
      compaction: { checkMs: 100, minFiles: 1, minShare: 0.05 },
      onLedgerEvent: (event) => {
        if (event.event === 'ledger.compacted' || event.event === 'ledger.compaction_failed')
          compacted(event);
      },
    });
    try {
      const table = loaded.tableName;
      // About 40 MiB at random keys: LevelDB flushes its 4 MiB write buffer into level 0 again and again
      // and compacts those files into level 1, so the load ends spread over two levels.
      const items = 200;
      for (let at = 0; at < items; at += 25) {
        await loaded.thread.writeItems(
          table,
          Array.from({ length: 25 }, (_, i) => ({
            PutRequest: { Item: { ...ledgerKey(`load#${at + i}`, 'meta'), blob: randomBytes(200 * 1024) } },
          })),
        );
      }
      const event = await done;
      if (event.event !== 'ledger.compacted') throw new Error(`compaction failed: ${JSON.stringify(event)}`);
      const nonEmpty = (files: number[]) => files.filter((count) => count > 0).length;
      expect(nonEmpty(event.filesBefore)).toBeGreaterThan(1);
      expect(nonEmpty(event.filesAfter)).toBe(1);
      for (const at of [0, 99, 199]) {
        const item = await loaded.thread.getItem(table, ledgerKey(`load#${at}`, 'meta'));
        expect((item?.blob as Uint8Array | undefined)?.byteLength).toBe(200 * 1024);
      }
    } finally {
      await loaded.close();
      await rm(loadDir, { recursive: true, force: true });
    }
  });
});

describe('a ledger from before the audit had a table of its own', () => {
  it('gets the audit table at start, its ledger table and items kept', async () => {
    const oldDir = await tempDir('ledger-upgrade');
    const path = join(oldDir, 'ledger');
    try {
      const first = await startLedgerStandIn({ ledgerPath: path, config });
      // As an earlier version left it: the ledger table only, with an item in it.
      await first.clients.dynamodb.send(new DeleteTableCommand({ TableName: first.auditTableName }));
      await waitUntilTableNotExists(
        { client: first.clients.dynamodb, maxWaitTime: 30, minDelay: 0.05, maxDelay: 0.2 },
        { TableName: first.auditTableName },
      );
      await first.clients.doc.send(
        new PutCommand({ TableName: first.tableName, Item: { ...ledgerKey('kept#one', 'meta'), v: 1 } }),
      );
      await first.close();

      const again = await startLedgerStandIn({ ledgerPath: path, config });
      try {
        const described = await again.clients.dynamodb.send(
          new DescribeTableCommand({ TableName: again.auditTableName }),
        );
        expect(described.Table?.TableStatus).toBe('ACTIVE');
        await expect(again.thread.getItem(again.tableName, ledgerKey('kept#one', 'meta'))).resolves.toEqual({
          ...ledgerKey('kept#one', 'meta'),
          v: 1,
        });
      } finally {
        await again.close();
      }
    } finally {
      await rm(oldDir, { recursive: true, force: true });
    }
  });
});
