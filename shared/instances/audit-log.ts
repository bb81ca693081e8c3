import { randomBytes } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import {
  BatchWriteCommand,
  type DynamoDBDocumentClient,
  paginateQuery,
  QueryCommand,
} from '@aws-sdk/lib-dynamodb';
import { TransientError } from '../errors.ts';
import * as ledgerTable from '../ledger/table.ts';
import { auditEntriesOf, ledgerCall, toAudit, type WriteRequest } from './dynamo-support.ts';
import type { AuditEntry } from './types.ts';

/** The ledger table the instance repository keeps its items in. */
export interface InstanceTable {
  doc: DynamoDBDocumentClient;
  table: string;
}

export const dayMs = 24 * 60 * 60 * 1000;
const k = ledgerTable.ledgerKeySchema;
const batchSize = 25;
const entriesPerItem = 500;
/** The table's key attributes under the placeholders the expressions here use. */
export const keyNames = { '#pk': k.partitionKey, '#sk': k.sortKey } as const;

export const keyOf = (item: Record<string, unknown>): ledgerTable.LedgerKey =>
  ledgerTable.ledgerKey(String(item[k.partitionKey]), String(item[k.sortKey]));

/** BatchWriteItem with its unprocessed items sent again, backing off, up to six rounds. */
async function writeBatch({ doc, table }: InstanceTable, requests: WriteRequest[]): Promise<void> {
  let pending = requests;
  for (let attempt = 0; pending.length > 0; attempt++) {
    const result = await ledgerCall('batch write', () =>
      doc.send(new BatchWriteCommand({ RequestItems: { [table]: pending } })),
    );
    pending = (result.UnprocessedItems?.[table] ?? []) as WriteRequest[];
    if (pending.length > 0) {
      if (attempt >= 5) {
        throw new TransientError('ledger-unavailable', `${pending.length} writes left unprocessed`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20 * 2 ** attempt));
    }
  }
}

export async function writeItems(t: InstanceTable, items: Record<string, unknown>[]): Promise<void> {
  for (let i = 0; i < items.length; i += batchSize) {
    await writeBatch(
      t,
      items.slice(i, i + batchSize).map((Item) => ({ PutRequest: { Item } })),
    );
  }
}

export async function deleteKeys(t: InstanceTable, keys: ledgerTable.LedgerKey[]): Promise<void> {
  for (let i = 0; i < keys.length; i += batchSize) {
    await writeBatch(
      t,
      keys.slice(i, i + batchSize).map((Key) => ({ DeleteRequest: { Key } })),
    );
  }
}

/** One item per instance and up to 500 entries, expiring `retentionMs` after its newest entry. */
function auditItems(
  taken: { id: string; entry: AuditEntry }[],
  retentionMs: number,
): Record<string, unknown>[] {
  const byInstance = new Map<string, AuditEntry[]>();
  for (const { id, entry } of taken) {
    const group = byInstance.get(id);
    if (group === undefined) byInstance.set(id, [entry]);
    else group.push(entry);
  }
  const items: Record<string, unknown>[] = [];
  for (const [id, entries] of byInstance) {
    for (let i = 0; i < entries.length; i += entriesPerItem) {
      const chunk = entries.slice(i, i + entriesPerItem);
      const first = chunk[0]?.at ?? '';
      const newest = Math.max(...chunk.map((entry) => Date.parse(entry.at)).filter(Number.isFinite));
      items.push({
        [ledgerTable.ledgerTtlAttribute]: Math.ceil((newest + retentionMs) / 1000),
        ...ledgerTable.ledgerItems.instanceAudit(id, `${first}#${randomBytes(4).toString('hex')}`),
        ...ledgerTable.ledgerIndexEntry(
          ledgerTable.ledgerIndex.instanceAuditDay(first.slice(0, 10)),
          `${first}#${id}`,
        ),
        entriesZ: deflateRawSync(JSON.stringify(chunk)),
      });
    }
  }
  return items;
}

export interface AuditQueueOptions {
  flushIntervalMs: number;
  maxQueued: number;
  retentionMs: number;
  onAuditError: (error: unknown, dropped: number) => void;
}

export interface AuditQueue {
  record(id: string, entry: AuditEntry): void;
  flush(): Promise<void>;
}

/**
 * Fetch audit entries, queued and written every flush interval. A failed flush puts its entries back and
 * is tried again on the next interval; beyond `maxQueued` the oldest are dropped and counted.
 */
export function createAuditQueue(t: InstanceTable, options: AuditQueueOptions): AuditQueue {
  const queue: { id: string; entry: AuditEntry }[] = [];
  let timer: NodeJS.Timeout | undefined;
  /** Entries dropped since last reported, so an outage gives one report per interval, not one per fetch. */
  let dropped = 0;
  let running: Promise<void> = Promise.resolve();

  async function drain(): Promise<void> {
    while (queue.length > 0) {
      const taken = queue.splice(0, batchSize * entriesPerItem);
      try {
        await writeItems(t, auditItems(taken, options.retentionMs));
      } catch (error) {
        queue.unshift(...taken);
        throw error;
      }
    }
  }

  function flush(): Promise<void> {
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    running = running.catch(() => undefined).then(drain);
    return running;
  }

  function schedule(): void {
    if (timer !== undefined) return;
    timer = setTimeout(() => {
      timer = undefined;
      if (dropped > 0) {
        options.onAuditError(new TransientError('audit-overflow', 'audit queue full'), dropped);
        dropped = 0;
      }
      flush().catch((error: unknown) => {
        options.onAuditError(error, 0);
        schedule();
      });
    }, options.flushIntervalMs);
    timer.unref();
  }

  function record(id: string, entry: AuditEntry): void {
    queue.push({ id, entry });
    if (queue.length > options.maxQueued) {
      const over = queue.length - options.maxQueued;
      queue.splice(0, over);
      dropped += over;
    }
    schedule();
  }

  return { record, flush };
}

export async function listAudit(
  { doc, table }: InstanceTable,
  id: string,
  limit: number,
): Promise<AuditEntry[]> {
  const found: AuditEntry[] = [];
  const pages = paginateQuery(
    { client: doc },
    {
      TableName: table,
      KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :audit)',
      ExpressionAttributeNames: keyNames,
      ExpressionAttributeValues: {
        ':pk': ledgerTable.instanceKeyParts.partition(id),
        ':audit': ledgerTable.instanceKeyParts.auditSortPrefix,
      },
      ScanIndexForward: false,
    },
  );
  while (found.length < limit) {
    const page = await ledgerCall('query audit', () => pages.next());
    if (page.done === true) break;
    for (const item of page.value.Items ?? []) {
      const entries = auditEntriesOf(item);
      if (Array.isArray(entries)) found.push(...entries.map(toAudit));
    }
  }
  return found.sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0)).slice(0, limit);
}

/** Deletes the audit items of the `daysBack` UTC days before `cutoff`'s day; returns how many. */
export async function deleteAuditDays(t: InstanceTable, cutoff: Date, daysBack: number): Promise<number> {
  let removed = 0;
  const firstDay = Date.UTC(cutoff.getUTCFullYear(), cutoff.getUTCMonth(), cutoff.getUTCDate());
  for (let back = 1; back <= daysBack; back++) {
    const day = new Date(firstDay - back * dayMs).toISOString().slice(0, 10);
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await ledgerCall('query expired audit', () =>
        t.doc.send(
          new QueryCommand({
            TableName: t.table,
            IndexName: k.gsi1Name,
            KeyConditionExpression: '#g1pk = :day',
            ExpressionAttributeNames: { ...keyNames, '#g1pk': k.gsi1PartitionKey },
            ExpressionAttributeValues: { ':day': ledgerTable.ledgerIndex.instanceAuditDay(day) },
            ProjectionExpression: '#pk, #sk',
            ExclusiveStartKey: startKey,
          }),
        ),
      );
      const keys = (page.Items ?? []).map(keyOf);
      await deleteKeys(t, keys);
      removed += keys.length;
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined);
  }
  return removed;
}
