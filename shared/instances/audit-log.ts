import { randomBytes } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
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
  /** BatchWriteItem's requests by a shorter way than the SDK, all processed or failing (see the repository's options). */
  writeRequests?: (table: string, requests: WriteRequest[]) => Promise<void>;
}

export const dayMs = 24 * 60 * 60 * 1000;
const k = ledgerTable.ledgerKeySchema;
const batchSize = 25;
const entriesPerItem = 500;
/** Audit items per write round: the round's day marker takes the 25th place. */
const itemsPerRound = batchSize - 1;
/** The table's key attributes under the placeholders the expressions here use. */
export const keyNames = { '#pk': k.partitionKey, '#sk': k.sortKey } as const;

export const keyOf = (item: Record<string, unknown>): ledgerTable.LedgerKey =>
  ledgerTable.ledgerKey(String(item[k.partitionKey]), String(item[k.sortKey]));

/** BatchWriteItem with its unprocessed items sent again, backing off, up to six rounds. */
async function writeBatch(
  { doc, table, writeRequests }: InstanceTable,
  requests: WriteRequest[],
): Promise<void> {
  if (writeRequests !== undefined) {
    await ledgerCall('batch write', () => writeRequests(table, requests));
    return;
  }
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

/**
 * Entries whose JSON is shorter than this are stored as it is (`entries`): deflate would save a few bytes
 * of one fetch's entry, and cost more CPU than the rest of its write.
 */
const compressFromBytes = 512;

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
        ...entriesAttribute(JSON.stringify(chunk)),
      });
    }
  }
  return items;
}

function entriesAttribute(json: string): Record<string, unknown> {
  return json.length < compressFromBytes ? { entries: json } : { entriesZ: deflateRawSync(json) };
}

/** The UTC day (`YYYY-MM-DD`) of an audit item's first entry, from its sort key. */
function auditDayOf(item: Record<string, unknown>): string {
  return String(item[k.sortKey]).slice(ledgerTable.instanceKeyParts.auditSortPrefix.length).slice(0, 10);
}

/**
 * Audit items grouped into BatchWriteItem rounds of one UTC day each, every round led by a day marker that
 * lists the keys of its items and expires with the last of them. The marker travels in the same call as
 * its items, never a later one, and a failed round is sent again whole (same keys) by the next flush, so
 * an item that landed has its marker once the round is done; only a process that dies inside a call can
 * leave such an item unlisted (dynalite runs a call's puts in parallel), its `ttl` still set.
 */
function auditRounds(items: Record<string, unknown>[], dayMarkers: boolean): WriteRequest[][] {
  if (!dayMarkers) {
    const rounds: WriteRequest[][] = [];
    for (let i = 0; i < items.length; i += batchSize) {
      rounds.push(items.slice(i, i + batchSize).map((Item) => ({ PutRequest: { Item } })));
    }
    return rounds;
  }
  const byDay = new Map<string, Record<string, unknown>[]>();
  for (const item of items) {
    const day = auditDayOf(item);
    const group = byDay.get(day);
    if (group === undefined) byDay.set(day, [item]);
    else group.push(item);
  }
  const rounds: WriteRequest[][] = [];
  for (const [day, dayItems] of byDay) {
    for (let i = 0; i < dayItems.length; i += itemsPerRound) {
      const chunk = dayItems.slice(i, i + itemsPerRound);
      const keys = chunk.map((item) => [item[k.partitionKey], item[k.sortKey]]);
      const ttl = Math.max(...chunk.map((item) => Number(item[ledgerTable.ledgerTtlAttribute])));
      const first = String(chunk[0]?.[k.sortKey] ?? '').slice(
        ledgerTable.instanceKeyParts.auditSortPrefix.length,
      );
      const marker = {
        [ledgerTable.ledgerTtlAttribute]: ttl,
        ...ledgerTable.ledgerItems.auditDayMarker(
          day,
          `${first.split('#')[0]}#${randomBytes(6).toString('hex')}`,
        ),
        keysZ: deflateRawSync(JSON.stringify(keys)),
      };
      rounds.push([marker, ...chunk].map((Item) => ({ PutRequest: { Item } })));
    }
  }
  return rounds;
}

/** The audit item keys a day marker lists; none when the attribute is missing or unreadable. */
function markerKeysOf(item: Record<string, unknown>): ledgerTable.LedgerKey[] {
  if (!(item.keysZ instanceof Uint8Array)) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(inflateRawSync(item.keysZ).toString('utf8'));
  } catch {
    return [];
  }
  if (!Array.isArray(parsed)) return [];
  return parsed.flatMap((pair: unknown) =>
    Array.isArray(pair) && typeof pair[0] === 'string' && typeof pair[1] === 'string'
      ? [ledgerTable.ledgerKey(pair[0], pair[1])]
      : [],
  );
}

export interface AuditQueueOptions {
  flushIntervalMs: number;
  maxQueued: number;
  retentionMs: number;
  /** Whether write rounds carry day markers for `deleteAuditDays` (one machine, where no TTL runs). */
  dayMarkers: boolean;
  onAuditError: (error: unknown, dropped: number) => void;
}

export interface AuditQueue {
  record(id: string, entry: AuditEntry): void;
  flush(): Promise<void>;
}

/**
 * Fetch audit entries, queued and written every flush interval. A failed flush keeps the write rounds it
 * had built and did not finish, and writes those same items and markers again on the next interval before
 * taking more entries, so a retry adds no second copy of a round that half landed; beyond `maxQueued` the
 * oldest queued entries are dropped and counted.
 */
export function createAuditQueue(t: InstanceTable, options: AuditQueueOptions): AuditQueue {
  const queue: { id: string; entry: AuditEntry }[] = [];
  let timer: NodeJS.Timeout | undefined;
  /** Entries dropped since last reported, so an outage gives one report per interval, not one per fetch. */
  let dropped = 0;
  let running: Promise<void> = Promise.resolve();
  /** Rounds built from entries already taken off the queue and not yet all written, oldest first. */
  const unwritten: WriteRequest[][] = [];

  async function drain(): Promise<void> {
    for (;;) {
      if (unwritten.length === 0) {
        if (queue.length === 0) return;
        unwritten.push(
          ...auditRounds(
            auditItems(queue.splice(0, batchSize * entriesPerItem), options.retentionMs),
            options.dayMarkers,
          ),
        );
      }
      for (let round = unwritten[0]; round !== undefined; round = unwritten[0]) {
        await writeBatch(t, round);
        unwritten.shift();
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
  return newestFirst(found).slice(0, limit);
}

/** Audit entries sorted newest first, in place. */
export function newestFirst(entries: AuditEntry[]): AuditEntry[] {
  return entries.sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
}

/** Every item of one `Query` input, a page at a time, each page handed to `onPage` before the next. */
async function eachPage(
  t: InstanceTable,
  input: Omit<ConstructorParameters<typeof QueryCommand>[0], 'TableName' | 'ExclusiveStartKey'>,
  onPage: (items: Record<string, unknown>[]) => Promise<void>,
): Promise<void> {
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await ledgerCall('query expired audit', () =>
      t.doc.send(new QueryCommand({ ...input, TableName: t.table, ExclusiveStartKey: startKey })),
    );
    await onPage(page.Items ?? []);
    startKey = page.LastEvaluatedKey;
  } while (startKey !== undefined);
}

/**
 * Deletes the audit items of the `daysBack` UTC days before `cutoff`'s day; returns how many. A day's
 * markers name its items: each marker goes after the items it lists, so a sweep that stops half-way leaves
 * a marker for whatever is left. Items written before the markers existed carry a `gsi1` entry for their
 * day instead, and are found there (an empty index partition costs one query) when `legacyIndex` says the
 * table can hold them.
 */
export async function deleteAuditDays(
  t: InstanceTable,
  cutoff: Date,
  daysBack: number,
  legacyIndex = true,
): Promise<number> {
  let removed = 0;
  const firstDay = Date.UTC(cutoff.getUTCFullYear(), cutoff.getUTCMonth(), cutoff.getUTCDate());
  for (let back = 1; back <= daysBack; back++) {
    const day = new Date(firstDay - back * dayMs).toISOString().slice(0, 10);
    await eachPage(
      t,
      {
        KeyConditionExpression: '#pk = :day',
        ExpressionAttributeNames: { '#pk': k.partitionKey },
        ExpressionAttributeValues: { ':day': ledgerTable.instanceKeyParts.auditDayPartition(day) },
      },
      async (markers) => {
        for (const marker of markers) {
          const keys = markerKeysOf(marker);
          await deleteKeys(t, keys);
          await deleteKeys(t, [keyOf(marker)]);
          removed += keys.length;
        }
      },
    );
    if (!legacyIndex) continue;
    await eachPage(
      t,
      {
        IndexName: k.gsi1Name,
        KeyConditionExpression: '#g1pk = :day',
        ExpressionAttributeNames: { ...keyNames, '#g1pk': k.gsi1PartitionKey },
        ExpressionAttributeValues: { ':day': ledgerTable.ledgerIndex.instanceAuditDay(day) },
        ProjectionExpression: '#pk, #sk',
      },
      async (legacy) => {
        const keys = legacy.map(keyOf);
        await deleteKeys(t, keys);
        removed += keys.length;
      },
    );
  }
  return removed;
}
