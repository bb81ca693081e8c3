import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SNSClient } from '@aws-sdk/client-sns';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { ledgerKeySchema } from '../../shared/ledger/table.ts';

/**
 * Counts what the code under test asks of AWS, through a middleware on each SDK client, in the units AWS
 * bills: DynamoDB read and write request units (on-demand), S3 requests by price class, SQS requests and
 * SNS publishes. What the emulators answer is what a real service would be asked, so the counts are the
 * code's, not a model's.
 *
 * DynamoDB units come from the size of each item, as DynamoDB sizes it (attribute names plus values): the
 * middleware asks for `ReturnConsumedCapacity: 'TOTAL'` on every call, which dynalite answers from the item
 * sizes (a write costs the larger of the old and new item, rounded up to 1 KB; a read, 4 KB). dynalite does
 * not count global secondary indexes, so the counter adds them: the ledger's `gsi1` projects every
 * attribute, so a write to an item that is in the index costs its units again there. Which items are in it
 * is learnt from the writes seen (an item written with a `gsi1pk` is in it), so count from the first write
 * of each item the flow touches. `TransactWriteItems` costs 2 units per KB of each item, so it is counted
 * from the request's items at that rate, whatever the emulator answers.
 */
export interface AwsUsage {
  dynamoReadUnits: number;
  dynamoWriteUnits: number;
  /** Calls by command name (`GetItem`, `PutObject`, `SendMessageBatch`, ...), per service. */
  calls: Record<string, number>;
  /** PUT, COPY, POST and LIST requests: S3's dearer class. */
  s3PutClass: number;
  /** GET, HEAD and every other request but DELETE and abort, which are free. */
  s3GetClass: number;
  sqsRequests: number;
  /** Messages sent (one per `SendMessage`, one per entry of `SendMessageBatch`). */
  sqsMessagesSent: number;
  snsPublishes: number;
}

export interface AwsCallCounter {
  /** What was counted since the last reset. */
  usage(): AwsUsage;
  reset(): void;
}

type Attributes = Record<string, unknown>;

const s3PutClass = new Set([
  'PutObject',
  'CopyObject',
  'CreateMultipartUpload',
  'UploadPart',
  'UploadPartCopy',
  'CompleteMultipartUpload',
  'ListObjectsV2',
  'ListObjects',
  'ListMultipartUploads',
  'ListParts',
]);
const s3Free = new Set(['DeleteObject', 'DeleteObjects', 'AbortMultipartUpload']);

/** The string value of an attribute, marshalled (`{ S: 'x' }`) or not. */
function stringOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value !== null && typeof value === 'object' && typeof (value as { S?: unknown }).S === 'string') {
    return (value as { S: string }).S;
  }
  return undefined;
}

function keyOf(item: Attributes | undefined): string {
  return `${stringOf(item?.[ledgerKeySchema.partitionKey])}\u0000${stringOf(item?.[ledgerKeySchema.sortKey])}`;
}

const utf8 = (text: string) => Buffer.byteLength(text, 'utf8');

/** DynamoDB's item size: each attribute's name plus its value, numbers about one byte per two digits. */
export function dynamoItemBytes(item: Attributes): number {
  let bytes = 0;
  for (const [name, value] of Object.entries(item)) bytes += utf8(name) + valueBytes(value);
  return bytes;
}

function valueBytes(value: unknown): number {
  if (value === null || value === undefined || typeof value === 'boolean') return 1;
  if (typeof value === 'string') return utf8(value);
  if (typeof value === 'number' || typeof value === 'bigint') return Math.ceil(String(value).length / 2) + 1;
  if (value instanceof Uint8Array) return value.byteLength;
  if (Array.isArray(value)) return 3 + value.reduce((n: number, v) => n + 1 + valueBytes(v), 0);
  if (value instanceof Set) return [...value].reduce((n: number, v) => n + valueBytes(v), 0);
  const object = value as Attributes;
  const keys = Object.keys(object);
  // A marshalled value (`{ S: ... }`, `{ N: ... }`, ...) is sized by what it holds.
  if (keys.length === 1) {
    const [tag] = keys;
    const inner = object[tag as string];
    if (tag === 'S' || tag === 'B') return valueBytes(inner);
    if (tag === 'N') return Math.ceil(String(inner).length / 2) + 1;
    if (tag === 'BOOL' || tag === 'NULL') return 1;
    if (tag === 'M')
      return 3 + dynamoItemBytes(inner as Attributes) + Object.keys(inner as Attributes).length;
    if (tag === 'L') return valueBytes(inner);
  }
  return 3 + keys.length + dynamoItemBytes(object);
}

const writeUnits = (item: Attributes) => Math.max(1, Math.ceil(dynamoItemBytes(item) / 1024));

/** Adds the counting middleware to the clients given (the same client objects the code under test uses). */
export function countAwsCalls(clients: {
  dynamodb?: DynamoDBClient;
  s3?: S3Client;
  sqs?: SQSClient;
  sns?: SNSClient;
}): AwsCallCounter {
  let usage: AwsUsage;
  const reset = () => {
    usage = {
      dynamoReadUnits: 0,
      dynamoWriteUnits: 0,
      calls: {},
      s3PutClass: 0,
      s3GetClass: 0,
      sqsRequests: 0,
      sqsMessagesSent: 0,
      snsPublishes: 0,
    };
  };
  reset();
  /** Items known to be in `gsi1`, by key: learnt from the writes that put them there. */
  const indexed = new Set<string>();
  const call = (service: string, command: string) => {
    const name = `${service}.${command.replace(/Command$/, '')}`;
    usage.calls[name] = (usage.calls[name] ?? 0) + 1;
    return command.replace(/Command$/, '');
  };

  /** Index writes a write to these items costs: an item entering, staying in or leaving `gsi1`. */
  const indexUnits = (key: string, after: Attributes | undefined, units: number): number => {
    const before = indexed.has(key);
    const now = after !== undefined && ledgerKeySchema.gsi1PartitionKey in after;
    if (now) indexed.add(key);
    else indexed.delete(key);
    return before || now ? units : 0;
  };

  clients.dynamodb?.middlewareStack.add(
    (next, context) => async (args) => {
      const command = call('DynamoDB', context.commandName ?? '?');
      const input = args.input as Attributes;
      if (command === 'TransactWriteItems') {
        // Each item at twice the standard rate; an update, delete or condition check is sized at 1 KB.
        for (const entry of (input.TransactItems as Attributes[] | undefined) ?? []) {
          const put = (entry.Put as { Item: Attributes } | undefined)?.Item;
          const other = Object.values(entry)[0] as { Key?: Attributes } | undefined;
          const units = put === undefined ? 1 : writeUnits(put);
          usage.dynamoWriteUnits += 2 * units;
          if (entry.ConditionCheck !== undefined) continue;
          const key = keyOf(put ?? other?.Key);
          const inIndex =
            put !== undefined
              ? indexUnits(key, put, units)
              : entry.Delete !== undefined
                ? indexUnits(key, undefined, units)
                : indexed.has(key)
                  ? units
                  : 0;
          usage.dynamoWriteUnits += 2 * inIndex;
        }
        return next(args);
      }
      input.ReturnConsumedCapacity = 'TOTAL';
      const result = await next(args);
      const output = result.output as { ConsumedCapacity?: unknown };
      const consumed = ([] as Array<{ CapacityUnits?: number }>).concat(
        (output.ConsumedCapacity as { CapacityUnits?: number } | undefined) ?? [],
      );
      const units = consumed.reduce((n, c) => n + (c.CapacityUnits ?? 0), 0);
      if (['GetItem', 'BatchGetItem', 'Query', 'Scan'].includes(command)) {
        usage.dynamoReadUnits += units;
        return result;
      }
      usage.dynamoWriteUnits += units;
      if (command === 'PutItem') {
        const item = input.Item as Attributes;
        usage.dynamoWriteUnits += indexUnits(keyOf(item), item, units);
      } else if (command === 'UpdateItem') {
        const key = keyOf(input.Key as Attributes);
        const names = `${String(input.UpdateExpression ?? '')} ${JSON.stringify(input.ExpressionAttributeNames ?? {})}`;
        if (names.includes(ledgerKeySchema.gsi1PartitionKey)) indexed.add(key);
        if (indexed.has(key)) usage.dynamoWriteUnits += units;
      } else if (command === 'DeleteItem') {
        usage.dynamoWriteUnits += indexUnits(keyOf(input.Key as Attributes), undefined, units);
      } else if (command === 'BatchWriteItem') {
        for (const requests of Object.values(input.RequestItems as Record<string, Attributes[]>)) {
          for (const request of requests) {
            const put = request.PutRequest as { Item: Attributes } | undefined;
            const del = request.DeleteRequest as { Key: Attributes } | undefined;
            const item = put?.Item;
            const each = item === undefined ? 1 : writeUnits(item);
            usage.dynamoWriteUnits += indexUnits(keyOf(item ?? del?.Key), item, each);
          }
        }
      }
      return result;
    },
    { step: 'initialize', priority: 'high', name: 'countAwsUsage' },
  );

  clients.s3?.middlewareStack.add(
    (next, context) => async (args) => {
      const command = call('S3', context.commandName ?? '?');
      if (s3PutClass.has(command)) usage.s3PutClass++;
      else if (!s3Free.has(command)) usage.s3GetClass++;
      return next(args);
    },
    { step: 'initialize', priority: 'high', name: 'countAwsUsage' },
  );
  clients.sqs?.middlewareStack.add(
    (next, context) => async (args) => {
      const command = call('SQS', context.commandName ?? '?');
      usage.sqsRequests++;
      if (command === 'SendMessage') usage.sqsMessagesSent++;
      if (command === 'SendMessageBatch') {
        usage.sqsMessagesSent += ((args.input as Attributes).Entries as unknown[]).length;
      }
      return next(args);
    },
    { step: 'initialize', priority: 'high', name: 'countAwsUsage' },
  );
  clients.sns?.middlewareStack.add(
    (next, context) => async (args) => {
      const command = call('SNS', context.commandName ?? '?');
      if (command === 'Publish') usage.snsPublishes++;
      if (command === 'PublishBatch') {
        usage.snsPublishes += ((args.input as Attributes).PublishBatchRequestEntries as unknown[]).length;
      }
      return next(args);
    },
    { step: 'initialize', priority: 'high', name: 'countAwsUsage' },
  );

  return {
    usage: () => structuredClone(usage),
    reset,
  };
}
