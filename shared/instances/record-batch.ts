import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { TransientError } from '../errors.ts';
import { instanceKeyParts, ledgerKeySchema as k, ledgerItems } from '../ledger/table.ts';
import type { InstanceTable } from './audit-log.ts';
import { ledgerCall, toRecord } from './dynamo-support.ts';
import { InstanceBatchConflictError } from './errors.ts';
import type { InstanceRecord, RecordWrite } from './types.ts';

/** DynamoDB's limit on the items of one TransactWriteItems, and of keys in one BatchGetItem. */
export const maxRecordBatch = 100;

/** BatchGetItem may leave keys unprocessed (throttling); they are asked again this often before giving up. */
const maxUnprocessedRounds = 8;

/** The conditional Put of one record, as `recordPutInput` in the repository builds it. */
type PutInputFor = (
  table: string,
  record: InstanceRecord,
  replaces: InstanceRecord | undefined,
) => { TableName: string; Item: Record<string, unknown>; ConditionExpression: string };

/**
 * Reasons a transaction is cancelled that a later try may not meet: another write of the same item in
 * flight, or capacity. A `ValidationError` is a bug here and is thrown as it came.
 */
const passingReasons = new Set([
  'TransactionConflict',
  'ThrottlingError',
  'ProvisionedThroughputExceeded',
  'RequestLimitExceeded',
]);

function wait(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Records by id, `maxRecordBatch` keys a BatchGetItem, strongly consistent; absent ids are left out. */
export async function getRecords(
  { doc, table }: InstanceTable,
  ids: readonly string[],
): Promise<Map<string, InstanceRecord>> {
  const found = new Map<string, InstanceRecord>();
  const prefix = instanceKeyParts.partitionPrefix;
  for (let first = 0; first < ids.length; first += maxRecordBatch) {
    let keys: Record<string, unknown>[] = ids
      .slice(first, first + maxRecordBatch)
      .map((id) => ledgerItems.instance(id));
    for (let round = 0; keys.length > 0; round++) {
      if (round === maxUnprocessedRounds) {
        throw new TransientError('ledger-unavailable', 'instance ledger unavailable (batch get: throttled)');
      }
      if (round > 0) await wait(Math.min(1000, 25 * 2 ** round));
      const asked = keys;
      const answer = await ledgerCall('batch get', () =>
        doc.send(new BatchGetCommand({ RequestItems: { [table]: { Keys: asked, ConsistentRead: true } } })),
      );
      for (const item of answer.Responses?.[table] ?? []) {
        const id = String(item[k.partitionKey]).slice(prefix.length);
        found.set(id, toRecord(id, item));
      }
      keys = answer.UnprocessedKeys?.[table]?.Keys ?? [];
    }
  }
  return found;
}

/**
 * All the records or none, in one TransactWriteItems. The SDK gives the request a client token and
 * reuses it on its own retries, so a retry of a transaction that did land is answered as done.
 */
export async function putRecords(
  { doc, table }: InstanceTable,
  entries: readonly RecordWrite[],
  putInputFor: PutInputFor,
): Promise<void> {
  if (entries.length === 0) return;
  if (entries.length > maxRecordBatch) {
    throw new RangeError(`a record batch holds at most ${maxRecordBatch} records, not ${entries.length}`);
  }
  try {
    await ledgerCall('batch put', () =>
      doc.send(
        new TransactWriteCommand({
          TransactItems: entries.map(({ record, replaces }) => ({
            Put: putInputFor(table, record, replaces),
          })),
        }),
      ),
    );
  } catch (error) {
    if (!(error instanceof TransactionCanceledException)) throw error;
    const reasons = error.CancellationReasons ?? [];
    const failed = reasons.flatMap((reason, at) => (reason.Code === 'ConditionalCheckFailed' ? [at] : []));
    if (failed.length > 0) {
      throw new InstanceBatchConflictError(
        failed,
        failed.map((at) => entries[at]?.record.id ?? '?'),
      );
    }
    if (reasons.every((reason) => reason.Code === 'None' || passingReasons.has(reason.Code ?? ''))) {
      throw new TransientError(
        'ledger-unavailable',
        'instance ledger busy (batch put); nothing was written',
        {
          cause: error,
        },
      );
    }
    throw error;
  }
}
