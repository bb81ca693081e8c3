import { randomBytes } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import {
  BatchWriteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { TransientError } from '../errors.ts';
import { hasParams, parseStoredParams } from '../metadata/params.ts';
import { createAddressBook, instanceListGsi1Pk } from './addresses.ts';
import type {
  AuditEntry,
  ConfigKind,
  FetchOutcome,
  InstanceRecord,
  InstanceRepository,
  RouteFamily,
} from './types.ts';

export interface DynamoInstanceRepositoryOptions {
  table: string;
  /** How long audit entries may wait to be written together (BatchWriteItem). */
  flushIntervalMs?: number;
  /** Beyond this many queued entries (a long DynamoDB outage) the oldest are dropped and reported. */
  maxQueuedAudit?: number;
  /** Told about background flush failures and dropped entries; the default writes to stderr. */
  onAuditError?: (error: unknown, dropped: number) => void;
}

const metaSk = 'meta';
const auditPrefix = 'audit#';
const batchSize = 25;
const entriesPerItem = 500;

function instancePk(id: string): string {
  return `instance#${id}`;
}

const retryableNames = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'InternalServerError',
  'ServiceUnavailable',
  'TimeoutError',
  'RequestTimeout',
]);

/** Network failures carry no HTTP status at all; those and 5xx/throttling are worth retrying. */
function isRetryable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return retryableNames.has(error.name) || status === undefined || status >= 500;
}

async function ledgerCall<T>(action: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (isRetryable(error)) {
      throw new TransientError('ledger-unavailable', `instance ledger unavailable (${action})`, {
        cause: error,
      });
    }
    throw error;
  }
}

function isConditionFailure(error: unknown): boolean {
  return error instanceof Error && error.name === 'ConditionalCheckFailedException';
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
  return {
    id,
    kind,
    tokenHash: String(item.tokenHash),
    etag: String(item.etag),
    bodyKey: String(item.bodyKey),
    size: Number(item.size),
    oneTime: item.oneTime === true,
    createdAt: String(item.createdAt),
    updatedAt: String(item.updatedAt),
    ...(specVersion === undefined ? {} : { specVersion }),
    ...(consumedAt === undefined ? {} : { consumedAt }),
    ...(expiresAt === undefined ? {} : { expiresAt }),
    ...(params === undefined ? {} : { params }),
  };
}

const routeFamilies = new Set<string>(['token', 'openstack', 'ec2', 'proxy']);

function toAudit(item: unknown): AuditEntry {
  const entry = (typeof item === 'object' && item !== null ? item : {}) as Record<string, unknown>;
  const route = entry.route === 'cloud-config' || entry.route === 'metadata' ? entry.route : 'ignition';
  const family = routeFamilies.has(String(entry.family)) ? (entry.family as RouteFamily) : undefined;
  const path = optionalString(entry.path);
  return {
    at: String(entry.at),
    route,
    ...(family === undefined ? {} : { family }),
    ...(path === undefined ? {} : { path }),
    sourceIp: String(entry.sourceIp),
    userAgent: String(entry.userAgent),
    outcome: String(entry.outcome) as FetchOutcome,
  };
}

type WriteRequest =
  | { PutRequest: { Item: Record<string, unknown> } }
  | { DeleteRequest: { Key: Record<string, string> } };

/**
 * An audit item's entries: `entriesZ` (raw deflate of the JSON array) since entries were compressed, or
 * the older plain `entries` string. An item that cannot be read yields none rather than failing the list.
 */
function auditEntriesOf(item: Record<string, unknown>): unknown {
  try {
    if (item.entriesZ instanceof Uint8Array)
      return JSON.parse(inflateRawSync(item.entriesZ).toString('utf8'));
    if (typeof item.entries === 'string') return JSON.parse(item.entries);
  } catch {
    return [];
  }
  return [];
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
          items.push({
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

    async put(record) {
      const { id, params, ...rest } = record;
      const item = {
        pk: instancePk(id),
        sk: metaSk,
        gsi1pk: instanceListGsi1Pk,
        gsi1sk: id,
        id,
        ...rest,
        ...(params !== undefined && hasParams(params) ? { params: JSON.stringify(params) } : {}),
      };
      await ledgerCall('put', () => doc.send(new PutCommand({ TableName: table, Item: item })));
    },

    claimAddresses: (id, addresses) => addressBook.claim(id, addresses),
    releaseAddresses: (id, addresses) => addressBook.release(id, addresses),
    instanceAtAddress: (address) => addressBook.holderOf(address),
    list: (limit, after) => addressBook.list(limit, after, toRecord),

    async delete(id) {
      await flush();
      const pk = instancePk(id);
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
      keys.sort((a, b) => (a.sk === metaSk ? -1 : b.sk === metaSk ? 1 : 0));
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

    flush,

    async close() {
      await flush();
    },
  };
}
