import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { TransientError } from '../errors.ts';
import { type LedgerKey, ledgerKeySchema, ledgerKindAttribute } from './table.ts';

export type Item = Record<string, unknown>;

/**
 * The pieces of one conditional write. Placeholders (`#name`, `:value`) are the caller's; the lease helper
 * keeps to its own (`#lease...`, `:lease...`), so both can be merged into one expression.
 */
export interface WriteParts {
  set?: readonly string[];
  add?: readonly string[];
  remove?: readonly string[];
  condition?: string;
  names?: Record<string, string>;
  values?: Record<string, unknown>;
}

/**
 * The one place where the ledger's parts talk to DynamoDB. Every write is conditional or plain; a failed
 * condition is an answer (false, or undefined), and anything else is a `TransientError`, because a
 * throttled or unreachable table is worth a retry (the handlers map it to a redelivery).
 */
export interface LedgerTable {
  clock(): Date;
  /** A strongly consistent read of one item. */
  get(operation: string, key: LedgerKey): Promise<Item | undefined>;
  /** Every page of a query, or pages until `limit` items came back (then exactly `limit`). */
  query(operation: string, input: Omit<QueryCommandInput, 'TableName'>, limit?: number): Promise<Item[]>;
  /** True if the item was written, false if `parts.condition` did not hold. */
  put(operation: string, item: Item, parts?: WriteParts): Promise<boolean>;
  /** True if the update was made, false if `parts.condition` did not hold. */
  update(operation: string, key: LedgerKey, parts: WriteParts): Promise<boolean>;
  /** The item after the update, or undefined if `parts.condition` did not hold. */
  updateReturning(operation: string, key: LedgerKey, parts: WriteParts): Promise<Item | undefined>;
  /** True if the item was deleted, false if `parts.condition` did not hold. */
  delete(operation: string, key: LedgerKey, parts?: WriteParts): Promise<boolean>;
}

export function isConditionFailure(error: unknown): boolean {
  return (
    error instanceof ConditionalCheckFailedException ||
    (error instanceof Error && error.name === 'ConditionalCheckFailedException')
  );
}

export function ledgerUnavailable(operation: string, error: unknown): TransientError {
  const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return new TransientError('ledger-unavailable', `ledger ${operation} failed: ${detail}`, { cause: error });
}

/** The table's own attributes, which callers never see in a record. */
const internalAttributes = new Set<string>([
  ledgerKeySchema.partitionKey,
  ledgerKeySchema.sortKey,
  ledgerKeySchema.gsi1PartitionKey,
  ledgerKeySchema.gsi1SortKey,
  ledgerKindAttribute,
  'versionKey',
]);

/** An item as its record: the keys, the index entry and the item kind left out. */
export function strip<T>(item: Item): T {
  const out: Item = {};
  for (const [key, value] of Object.entries(item)) {
    if (!internalAttributes.has(key)) out[key] = value;
  }
  return out as T;
}

function expressionOf(parts: WriteParts): {
  UpdateExpression?: string;
  ConditionExpression?: string;
  ExpressionAttributeNames?: Record<string, string>;
  ExpressionAttributeValues?: Record<string, unknown>;
} {
  const clauses = [
    ['SET', parts.set],
    ['ADD', parts.add],
    ['REMOVE', parts.remove],
  ] as const;
  const update = clauses
    .filter(([, actions]) => actions !== undefined && actions.length > 0)
    .map(([verb, actions]) => `${verb} ${actions?.join(', ')}`)
    .join(' ');
  const names = parts.names ?? {};
  const values = parts.values ?? {};
  return {
    ...(update === '' ? {} : { UpdateExpression: update }),
    ...(parts.condition === undefined ? {} : { ConditionExpression: parts.condition }),
    ...(Object.keys(names).length === 0 ? {} : { ExpressionAttributeNames: names }),
    ...(Object.keys(values).length === 0 ? {} : { ExpressionAttributeValues: values }),
  };
}

/** Runs a write; undefined if its condition failed. */
async function attempt<T>(operation: string, run: () => Promise<T>): Promise<T | undefined> {
  try {
    return await run();
  } catch (error) {
    if (isConditionFailure(error)) return undefined;
    throw ledgerUnavailable(operation, error);
  }
}

export function ledgerTable(doc: DynamoDBDocumentClient, tableName: string, clock: () => Date): LedgerTable {
  const TableName = tableName;

  async function updateReturning(operation: string, key: LedgerKey, parts: WriteParts) {
    const out = await attempt(operation, () =>
      doc.send(new UpdateCommand({ TableName, Key: key, ...expressionOf(parts), ReturnValues: 'ALL_NEW' })),
    );
    return out === undefined ? undefined : (out.Attributes ?? {});
  }

  return {
    clock,

    async get(operation, key) {
      try {
        const out = await doc.send(new GetCommand({ TableName, Key: key, ConsistentRead: true }));
        return out.Item;
      } catch (error) {
        throw ledgerUnavailable(operation, error);
      }
    },

    async query(operation, input, limit = Number.POSITIVE_INFINITY) {
      const items: Item[] = [];
      let startKey: Item | undefined;
      do {
        let page: { Items?: Item[]; LastEvaluatedKey?: Item };
        try {
          page = await doc.send(new QueryCommand({ ...input, TableName, ExclusiveStartKey: startKey }));
        } catch (error) {
          throw ledgerUnavailable(operation, error);
        }
        items.push(...(page.Items ?? []));
        startKey = page.LastEvaluatedKey;
      } while (startKey !== undefined && items.length < limit);
      return items.slice(0, limit);
    },

    async put(operation, item, parts = {}) {
      const out = await attempt(operation, async () => {
        await doc.send(new PutCommand({ TableName, Item: item, ...expressionOf(parts) }));
        return true;
      });
      return out === true;
    },

    async update(operation, key, parts) {
      const out = await attempt(operation, async () => {
        await doc.send(new UpdateCommand({ TableName, Key: key, ...expressionOf(parts) }));
        return true;
      });
      return out === true;
    },

    updateReturning,

    async delete(operation, key, parts = {}) {
      const out = await attempt(operation, async () => {
        await doc.send(new DeleteCommand({ TableName, Key: key, ...expressionOf(parts) }));
        return true;
      });
      return out === true;
    },
  };
}

/** The partition key as `#pk`, for conditions such as `attribute_exists(#pk)` (the item exists). */
export const partitionKeyName = { '#pk': ledgerKeySchema.partitionKey } as const;
