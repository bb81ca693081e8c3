import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  paginateScan,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import {
  instanceKeyParts,
  ledgerKeySchema as k,
  type LedgerKey,
  ledgerIndex,
  ledgerIndexEntry,
  ledgerItems,
  ledgerTtlAttribute,
} from '../ledger/table.ts';
import { hasParams } from '../metadata/params.ts';
import { createAddressBook } from './addresses.ts';
import {
  createAuditQueue,
  dayMs,
  deleteAuditDays,
  deleteKeys,
  type InstanceTable,
  keyNames,
  keyOf,
  listAudit,
  newestFirst,
} from './audit-log.ts';
import { inlineBodyAttribute, isConditionFailure, ledgerCall, toRecord } from './dynamo-support.ts';
import { InstanceConflictError } from './errors.ts';
import { getRecords, putRecords } from './record-batch.ts';
import type { InstanceRecord, InstanceRepository } from './types.ts';

export interface DynamoInstanceRepositoryOptions {
  table: string;
  /** How long audit entries may wait to be written together (BatchWriteItem). */
  flushIntervalMs?: number;
  /** Beyond this many queued entries (a long DynamoDB outage) the oldest are dropped and reported. */
  maxQueuedAudit?: number;
  /** Told about background flush failures and dropped entries; the default writes to stderr. */
  onAuditError?: (error: unknown, dropped: number) => void;
  /**
   * Days an audit item is kept: it carries `ttl` (epoch seconds) this long after its newest entry, which
   * DynamoDB's TTL honours on AWS and `deleteAuditBefore` on one machine. Default 90.
   */
  auditRetentionDays?: number;
  /**
   * Whether each audit write round also writes a day marker listing its items, which `deleteAuditBefore`
   * reads to remove them. Needed on one machine, where dynalite keeps no TTL; on AWS DynamoDB's TTL
   * expires audit items, so the API Lambda turns markers off and a fetch costs one audit item. Default on.
   */
  auditDayMarkers?: boolean;
  /**
   * Reads one whole item, consistently, by a shorter way than a GetItem request, where there is one: the
   * single-machine ledger answers from its own thread in this process without HTTP. Used for the record
   * read of a config fetch; everything else goes through `doc`.
   */
  readItem?: (table: string, key: LedgerKey) => Promise<Record<string, unknown> | undefined>;
  /**
   * Writes a BatchWriteItem's requests, all of them or failing, by a shorter way than the SDK where there
   * is one (the single-machine ledger's thread): the audit rounds and batched deletes.
   */
  writeRequests?: InstanceTable['writeRequests'];
  /**
   * The table audit items and their day markers go to; default `table`. One machine gives them a table
   * of their own: LevelDB keeps each of dynalite's tables in a key range of its own, and audit items
   * spread among the records make every record read at random look into the files the audit writes
   * keep creating (and set off LevelDB's compactions of them, which rewrite the records). Audit items
   * that an earlier version wrote to `table` are still listed, swept and deleted there. The table needs
   * no index (`auditTableInput`): the sweep looks up only the ledger table's index.
   */
  auditTable?: string;
}

/** The audit items' expiry attribute; the CDK stack enables TTL on the table under this name. */
export const auditTtlAttribute = ledgerTtlAttribute;

function reportToStderr(error: unknown, dropped: number): void {
  const what = dropped > 0 ? `dropped ${dropped} audit entries` : 'audit flush failed, will retry';
  process.stderr.write(`cldist api: ${what}: ${error instanceof Error ? error.message : String(error)}\n`);
}

/**
 * Instance records and their fetch audit in the ledger table (keys from `ledgerItems`): `instance#{id}` /
 * `meta` for the record, `instance#{id}` / `audit#{iso}#{rand}` for the audit (listed by day in `audit-day#{day}` markers when `auditDayMarkers` is on).
 *
 * Audit entries are queued and written every flush interval: the entries of one instance from one
 * interval share one item (`entriesZ`, a JSON array of up to 500, raw-deflated into one binary attribute, or plain `entries` while it is short:
 * far cheaper to marshal than a list of maps, and about a tenth of the bytes, which is what a busy audit
 * costs in write units on DynamoDB and in memory and compaction in single-machine mode's LevelDB), and
 * items go out in BatchWriteItem batches of 25, so a
 * busy fetch path costs a few writes per interval instead of one per fetch. `flush()` must be awaited before an orderly shutdown (and at
 * the end of every Lambda invocation, since a frozen sandbox runs no timers).
 */
export function createDynamoInstanceRepository(
  doc: DynamoDBDocumentClient,
  options: DynamoInstanceRepositoryOptions,
): InstanceRepository {
  const t: InstanceTable = {
    doc,
    table: options.table,
    ...(options.writeRequests === undefined ? {} : { writeRequests: options.writeRequests }),
  };
  const auditTable: InstanceTable = { ...t, table: options.auditTable ?? options.table };
  /** Where audit items are: the audit table, and the ledger table as well when that is another one. */
  const auditTables = auditTable.table === t.table ? [t] : [auditTable, t];
  const audit = createAuditQueue(auditTable, {
    flushIntervalMs: options.flushIntervalMs ?? 100,
    maxQueued: options.maxQueuedAudit ?? 10_000,
    retentionMs: (options.auditRetentionDays ?? 90) * dayMs,
    dayMarkers: options.auditDayMarkers ?? true,
    onAuditError: options.onAuditError ?? reportToStderr,
  });
  const addressBook = createAddressBook(doc, options.table, ledgerCall);
  return {
    get: (id) => getRecord(t, id, options.readItem),
    put: (record, replaces) => putRecord(t, record, replaces),
    getMany: (ids) => getRecords(t, ids),
    putBatch: (entries) => putRecords(t, entries, recordPutInput),
    claimAddresses: (id, addresses) => addressBook.claim(id, addresses),
    releaseAddresses: (id, addresses) => addressBook.release(id, addresses),
    instanceAtAddress: (address) => addressBook.holderOf(address),
    list: (limit, after, prefix) => addressBook.list(limit, after, toRecord, prefix),
    async delete(id, replaces) {
      await audit.flush();
      await deleteRecord(t, id, replaces);
      for (const table of auditTables) await deletePartition(table, id);
    },
    consume: (id, tokenHash, at) => consume(t, id, tokenHash, at),
    recordFetch: (id, entry) => audit.record(id, entry),
    async listAudit(id, limit) {
      const lists = await Promise.all(auditTables.map((table) => listAudit(table, id, limit)));
      return lists.length === 1 ? (lists[0] ?? []) : newestFirst(lists.flat()).slice(0, limit);
    },
    listIds: () => listIds(t),
    async deleteAuditBefore(cutoff, daysBack) {
      await audit.flush();
      let removed = 0;
      for (const table of auditTables) {
        // Only the ledger table can hold audit items from before the day markers, listed in its index.
        removed += await deleteAuditDays(table, cutoff, daysBack, table === t);
      }
      return removed;
    },
    flush: () => audit.flush(),
    close: () => audit.flush(),
  };
}

async function getRecord(
  { doc, table }: InstanceTable,
  id: string,
  readItem: DynamoInstanceRepositoryOptions['readItem'],
): Promise<InstanceRecord | undefined> {
  const key = ledgerItems.instance(id);
  const item = await ledgerCall('get', async () =>
    readItem === undefined
      ? (await doc.send(new GetCommand({ TableName: table, Key: key, ConsistentRead: true }))).Item
      : readItem(table, key),
  );
  return item === undefined ? undefined : toRecord(id, item);
}

/**
 * The ledger item of an instance record: the one marshalling of a record, for single and batched writes
 * alike. An inline body is the binary `bodyZ` (raw deflate); a reserved record has no body yet, so its
 * placeholders are left out rather than stored empty.
 */
export function recordItemFor(record: InstanceRecord): Record<string, unknown> {
  const { id, params, etag, bodyKey, inlineBody, ...rest } = record;
  return {
    ...ledgerItems.instance(id),
    ...ledgerIndexEntry(ledgerIndex.instances, id),
    id,
    ...rest,
    ...(etag === '' ? {} : { etag }),
    ...(bodyKey === '' ? {} : { bodyKey }),
    ...(inlineBody === undefined ? {} : { [inlineBodyAttribute]: inlineBody }),
    ...(params !== undefined && hasParams(params) ? { params: JSON.stringify(params) } : {}),
  };
}

/**
 * The conditional Put of a record, for PutItem and for a Put in TransactWriteItems alike: written if new,
 * if the caller holds its token, or if it still is the record the caller replaces.
 */
export function recordPutInput(table: string, record: InstanceRecord, replaces: InstanceRecord | undefined) {
  const { bodyKey, writeId } = record;
  const item = recordItemFor(record);
  // The first PUT onto a reservation keeps its token, so the token alone cannot tell racing writes
  // apart: the first to land ends the reservation, and a retry of that same write is known by its write
  // id (records from before write ids, by their body key, which is unique per write too).
  const endsReservation =
    replaces?.reservedUntil !== undefined &&
    record.reservedUntil === undefined &&
    replaces.tokenHash === record.tokenHash;
  const sameWrite = writeId === undefined ? 'bodyKey = :body' : 'writeId = :body';
  const condition = endsReservation
    ? `(tokenHash = :replaced AND attribute_exists(reservedUntil)) OR ${sameWrite}`
    : replaces === undefined
      ? 'attribute_not_exists(#pk) OR tokenHash = :mine'
      : 'tokenHash = :replaced OR tokenHash = :mine';
  const values = endsReservation
    ? { ':replaced': replaces.tokenHash, ':body': writeId ?? bodyKey }
    : {
        ':mine': record.tokenHash,
        ...(replaces === undefined ? {} : { ':replaced': replaces.tokenHash }),
      };
  return {
    TableName: table,
    Item: item,
    ConditionExpression: condition,
    ...(!endsReservation && replaces === undefined
      ? { ExpressionAttributeNames: { '#pk': k.partitionKey } }
      : {}),
    ExpressionAttributeValues: values,
  };
}

async function putRecord(
  { doc, table }: InstanceTable,
  record: InstanceRecord,
  replaces: InstanceRecord | undefined,
): Promise<void> {
  try {
    await ledgerCall('put', () => doc.send(new PutCommand(recordPutInput(table, record, replaces))));
  } catch (error) {
    if (isConditionFailure(error)) throw new InstanceConflictError(record.id);
    throw error;
  }
}

/** The record goes first (conditionally), then every other item of the instance's partition. */
async function deleteRecord(t: InstanceTable, id: string, replaces: InstanceRecord): Promise<void> {
  const { doc, table } = t;
  const key = ledgerItems.instance(id);
  try {
    await ledgerCall('delete', () =>
      doc.send(
        new DeleteCommand({
          TableName: table,
          Key: key,
          ConditionExpression: 'tokenHash = :replaced',
          ExpressionAttributeValues: { ':replaced': replaces.tokenHash },
        }),
      ),
    );
  } catch (error) {
    if (isConditionFailure(error)) throw new InstanceConflictError(id);
    throw error;
  }
}

/** Every item of the instance's partition in one table: its audit, and its record if still there. */
async function deletePartition(t: InstanceTable, id: string): Promise<void> {
  const { doc, table } = t;
  const key = ledgerItems.instance(id);
  let startKey: Record<string, unknown> | undefined;
  const keys: LedgerKey[] = [];
  do {
    const page = await ledgerCall('query', () =>
      doc.send(
        new QueryCommand({
          TableName: table,
          KeyConditionExpression: '#pk = :pk',
          ExpressionAttributeNames: keyNames,
          ExpressionAttributeValues: { ':pk': key[k.partitionKey] },
          ProjectionExpression: '#pk, #sk',
          ConsistentRead: true,
          ExclusiveStartKey: startKey,
        }),
      ),
    );
    for (const item of page.Items ?? []) keys.push(keyOf(item));
    startKey = page.LastEvaluatedKey;
  } while (startKey !== undefined);
  await deleteKeys(t, keys);
}

async function consume(
  { doc, table }: InstanceTable,
  id: string,
  tokenHash: string,
  at: Date,
): Promise<boolean> {
  try {
    await ledgerCall('consume', () =>
      doc.send(
        new UpdateCommand({
          TableName: table,
          Key: ledgerItems.instance(id),
          UpdateExpression: 'SET consumedAt = :at',
          ConditionExpression:
            'attribute_exists(#pk) AND attribute_not_exists(consumedAt) AND tokenHash = :h',
          ExpressionAttributeNames: { '#pk': k.partitionKey },
          ExpressionAttributeValues: { ':at': at.toISOString(), ':h': tokenHash },
        }),
      ),
    );
    return true;
  } catch (error) {
    if (isConditionFailure(error)) return false;
    throw error;
  }
}

async function* listIds({ doc, table }: InstanceTable): AsyncGenerator<string[]> {
  const pages = paginateScan(
    { client: doc },
    {
      TableName: table,
      FilterExpression: '#sk = :meta AND begins_with(#pk, :instance)',
      ExpressionAttributeNames: keyNames,
      ExpressionAttributeValues: {
        ':meta': instanceKeyParts.recordSortKey,
        ':instance': instanceKeyParts.partitionPrefix,
      },
      ProjectionExpression: '#pk',
    },
  );
  const prefix = instanceKeyParts.partitionPrefix;
  for (;;) {
    const page = await ledgerCall('scan ids', () => pages.next());
    if (page.done === true) return;
    const ids = (page.value.Items ?? []).map((item) => String(item[k.partitionKey]).slice(prefix.length));
    if (ids.length > 0) yield ids;
  }
}
