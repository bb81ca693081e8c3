import { randomBytes } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import {
  BatchWriteCommand,
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { TransientError } from '../errors.ts';
import { ledgerTtlAttribute } from '../ledger/table.ts';
import { hasParams, parseStoredParams } from '../metadata/params.ts';
import { createAddressBook, instanceListGsi1Pk } from './addresses.ts';
import {
  auditEntriesOf,
  isConditionFailure,
  ledgerCall,
  toAudit,
  type WriteRequest,
} from './dynamo-support.ts';
import { InstanceConflictError } from './errors.ts';
import type { AuditEntry, ConfigKind, InstanceRecord, InstanceRepository } from './types.ts';

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
}

/** The audit items' expiry attribute; the CDK stack enables TTL on the table under this name. */
export const auditTtlAttribute = ledgerTtlAttribute;
const dayMs = 24 * 60 * 60 * 1000;

const metaSk = 'meta';
const auditPrefix = 'audit#';
const batchSize = 25;
const entriesPerItem = 500;

function instancePk(id: string): string {
  return `instance#${id}`;
}

function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function toRecord(id: string, item: Record<string, unknown>): InstanceRecord {
  const kind: ConfigKind = item.kind === 'cloud-config' ? 'cloud-config' : 'ignition';
  const specVersion = optionalString(item.specVersion);
  const consumedAt = optionalString(item.consumedAt);
  const expiresAt = optionalString(item.expiresAt);
  const params = item.params === undefined ? undefined : parseStoredParams(item.params);
  const reservedUntil = optionalString(item.reservedUntil);
  return {
    id,
    kind,
    tokenHash: String(item.tokenHash),
    etag: optionalString(item.etag) ?? '',
    bodyKey: optionalString(item.bodyKey) ?? '',
    size: typeof item.size === 'number' ? item.size : 0,
    oneTime: item.oneTime === true,
    createdAt: String(item.createdAt),
    updatedAt: String(item.updatedAt),
    ...(specVersion === undefined ? {} : { specVersion }),
    ...(consumedAt === undefined ? {} : { consumedAt }),
    ...(expiresAt === undefined ? {} : { expiresAt }),
    ...(params === undefined ? {} : { params }),
    ...(reservedUntil === undefined ? {} : { reservedUntil }),
  };
}

/**
 * Instance records and their fetch audit in the ledger table: `instance#{id}` / `meta` for the record,
 * `instance#{id}` / `audit#{iso}#{rand}` for the audit (also indexed by day on gsi1).
 *
 * Audit entries are queued and written every flush interval: the entries of one instance from one
 * interval share one item (`entriesZ`, a JSON array of up to 500, raw-deflated into one binary attribute:
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
  const { table } = options;
  const flushIntervalMs = options.flushIntervalMs ?? 100;
  const maxQueued = options.maxQueuedAudit ?? 10_000;
  const retentionMs = (options.auditRetentionDays ?? 90) * dayMs;
  const onAuditError =
    options.onAuditError ??
    ((error: unknown, dropped: number) => {
      const what = dropped > 0 ? `dropped ${dropped} audit entries` : 'audit flush failed, will retry';
      process.stderr.write(
        `cldist api: ${what}: ${error instanceof Error ? error.message : String(error)}\n`,
      );
    });
  const queue: { id: string; entry: AuditEntry }[] = [];
  let timer: NodeJS.Timeout | undefined;
  /** Entries dropped since last reported, so an outage gives one report per interval, not one per fetch. */
  let dropped = 0;
  let running: Promise<void> = Promise.resolve();
  const addressBook = createAddressBook(doc, table, ledgerCall);

  async function writeBatch(requests: WriteRequest[]): Promise<void> {
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

  async function drain(): Promise<void> {
    while (queue.length > 0) {
      const taken = queue.splice(0, batchSize * entriesPerItem);
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
            [auditTtlAttribute]: Math.ceil((newest + retentionMs) / 1000),
            pk: instancePk(id),
            sk: `${auditPrefix}${first}#${randomBytes(4).toString('hex')}`,
            gsi1pk: `instance-audit#${first.slice(0, 10)}`,
            gsi1sk: `${first}#${id}`,
            entriesZ: deflateRawSync(JSON.stringify(chunk)),
          });
        }
      }
      try {
        for (let i = 0; i < items.length; i += batchSize) {
          await writeBatch(items.slice(i, i + batchSize).map((Item) => ({ PutRequest: { Item } })));
        }
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
        onAuditError(new TransientError('audit-overflow', 'audit queue full'), dropped);
        dropped = 0;
      }
      flush().catch((error: unknown) => {
        onAuditError(error, 0);
        schedule();
      });
    }, flushIntervalMs);
    timer.unref();
  }

  return {
    async get(id) {
      const result = await ledgerCall('get', () =>
        doc.send(
          new GetCommand({ TableName: table, Key: { pk: instancePk(id), sk: metaSk }, ConsistentRead: true }),
        ),
      );
      return result.Item === undefined ? undefined : toRecord(id, result.Item);
    },

    async put(record, replaces) {
      const { id, params, etag, bodyKey, ...rest } = record;
      const item = {
        pk: instancePk(id),
        sk: metaSk,
        gsi1pk: instanceListGsi1Pk,
        gsi1sk: id,
        id,
        ...rest,
        // A reserved record has no body yet: its placeholders are left out rather than stored empty.
        ...(etag === '' ? {} : { etag }),
        ...(bodyKey === '' ? {} : { bodyKey }),
        ...(params !== undefined && hasParams(params) ? { params: JSON.stringify(params) } : {}),
      };
      // The first PUT onto a reservation keeps its token, so the token alone cannot tell racing writes
      // apart: the first to land ends the reservation, and a retry of that same write is known by its body.
      const endsReservation =
        replaces?.reservedUntil !== undefined &&
        record.reservedUntil === undefined &&
        replaces.tokenHash === record.tokenHash;
      const condition = endsReservation
        ? '(tokenHash = :replaced AND attribute_exists(reservedUntil)) OR bodyKey = :body'
        : replaces === undefined
          ? 'attribute_not_exists(pk) OR tokenHash = :mine'
          : 'tokenHash = :replaced OR tokenHash = :mine';
      const values = endsReservation
        ? { ':replaced': replaces.tokenHash, ':body': bodyKey }
        : {
            ':mine': record.tokenHash,
            ...(replaces === undefined ? {} : { ':replaced': replaces.tokenHash }),
          };
      try {
        await ledgerCall('put', () =>
          doc.send(
            new PutCommand({
              TableName: table,
              Item: item,
              ConditionExpression: condition,
              ExpressionAttributeValues: values,
            }),
          ),
        );
      } catch (error) {
        if (isConditionFailure(error)) throw new InstanceConflictError(id);
        throw error;
      }
    },

    claimAddresses: (id, addresses) => addressBook.claim(id, addresses),
    releaseAddresses: (id, addresses) => addressBook.release(id, addresses),
    instanceAtAddress: (address) => addressBook.holderOf(address),
    list: (limit, after, prefix) => addressBook.list(limit, after, toRecord, prefix),

    async delete(id, replaces) {
      await flush();
      const pk = instancePk(id);
      try {
        await ledgerCall('delete', () =>
          doc.send(
            new DeleteCommand({
              TableName: table,
              Key: { pk, sk: metaSk },
              ConditionExpression: 'tokenHash = :replaced',
              ExpressionAttributeValues: { ':replaced': replaces.tokenHash },
            }),
          ),
        );
      } catch (error) {
        if (isConditionFailure(error)) throw new InstanceConflictError(id);
        throw error;
      }
      let startKey: Record<string, unknown> | undefined;
      const keys: { pk: string; sk: string }[] = [];
      do {
        const page = await ledgerCall('query', () =>
          doc.send(
            new QueryCommand({
              TableName: table,
              KeyConditionExpression: 'pk = :pk',
              ExpressionAttributeValues: { ':pk': pk },
              ProjectionExpression: 'pk, sk',
              ConsistentRead: true,
              ExclusiveStartKey: startKey,
            }),
          ),
        );
        for (const item of page.Items ?? []) keys.push({ pk, sk: String(item.sk) });
        startKey = page.LastEvaluatedKey;
      } while (startKey !== undefined);
      for (let i = 0; i < keys.length; i += batchSize) {
        await writeBatch(keys.slice(i, i + batchSize).map((Key) => ({ DeleteRequest: { Key } })));
      }
    },

    async consume(id, tokenHash, at) {
      try {
        await ledgerCall('consume', () =>
          doc.send(
            new UpdateCommand({
              TableName: table,
              Key: { pk: instancePk(id), sk: metaSk },
              UpdateExpression: 'SET consumedAt = :at',
              ConditionExpression:
                'attribute_exists(pk) AND attribute_not_exists(consumedAt) AND tokenHash = :h',
              ExpressionAttributeValues: { ':at': at.toISOString(), ':h': tokenHash },
            }),
          ),
        );
        return true;
      } catch (error) {
        if (isConditionFailure(error)) return false;
        throw error;
      }
    },

    recordFetch(id, entry) {
      queue.push({ id, entry });
      if (queue.length > maxQueued) {
        const over = queue.length - maxQueued;
        queue.splice(0, over);
        dropped += over;
      }
      schedule();
    },

    async listAudit(id, limit) {
      const found: AuditEntry[] = [];
      let startKey: Record<string, unknown> | undefined;
      do {
        const page = await ledgerCall('query audit', () =>
          doc.send(
            new QueryCommand({
              TableName: table,
              KeyConditionExpression: 'pk = :pk AND begins_with(sk, :audit)',
              ExpressionAttributeValues: { ':pk': instancePk(id), ':audit': auditPrefix },
              ScanIndexForward: false,
              ExclusiveStartKey: startKey,
            }),
          ),
        );
        for (const item of page.Items ?? []) {
          const entries = auditEntriesOf(item);
          if (Array.isArray(entries)) found.push(...entries.map(toAudit));
        }
        startKey = page.LastEvaluatedKey;
      } while (startKey !== undefined && found.length < limit);
      return found.sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0)).slice(0, limit);
    },

    async *listIds() {
      let startKey: Record<string, unknown> | undefined;
      do {
        const page = await ledgerCall('scan ids', () =>
          doc.send(
            new ScanCommand({
              TableName: table,
              FilterExpression: 'sk = :meta AND begins_with(pk, :instance)',
              ExpressionAttributeValues: { ':meta': metaSk, ':instance': instancePk('') },
              ProjectionExpression: 'pk',
              ExclusiveStartKey: startKey,
            }),
          ),
        );
        const ids = (page.Items ?? []).map((item) => String(item.pk).slice(instancePk('').length));
        if (ids.length > 0) yield ids;
        startKey = page.LastEvaluatedKey;
      } while (startKey !== undefined);
    },

    async deleteAuditBefore(cutoff, daysBack) {
      await flush();
      let removed = 0;
      const firstDay = Date.UTC(cutoff.getUTCFullYear(), cutoff.getUTCMonth(), cutoff.getUTCDate());
      for (let back = 1; back <= daysBack; back++) {
        const day = new Date(firstDay - back * dayMs).toISOString().slice(0, 10);
        let startKey: Record<string, unknown> | undefined;
        do {
          const page = await ledgerCall('query expired audit', () =>
            doc.send(
              new QueryCommand({
                TableName: table,
                IndexName: 'gsi1',
                KeyConditionExpression: 'gsi1pk = :day',
                ExpressionAttributeValues: { ':day': `instance-audit#${day}` },
                ProjectionExpression: 'pk, sk',
                ExclusiveStartKey: startKey,
              }),
            ),
          );
          const keys = (page.Items ?? []).map((item) => ({ pk: String(item.pk), sk: String(item.sk) }));
          for (let i = 0; i < keys.length; i += batchSize) {
            await writeBatch(keys.slice(i, i + batchSize).map((Key) => ({ DeleteRequest: { Key } })));
          }
          removed += keys.length;
          startKey = page.LastEvaluatedKey;
        } while (startKey !== undefined);
      }
      return removed;
    },

    flush,

    async close() {
      await flush();
    },
  };
}
