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

/** What the middlewares add to, shared by them all. */
interface Tally {
  usage: AwsUsage;
  /** Items known to be in `gsi1`, by key: learnt from the writes that put them there. */
  indexed: Set<string>;
}

/** Counts a call and returns the command's name without `Command`. */
function countCall(tally: Tally, service: string, commandName: string | undefined): string {
  const name = (commandName ?? '?').replace(/Command$/, '');
  tally.usage.calls[`${service}.${name}`] = (tally.usage.calls[`${service}.${name}`] ?? 0) + 1;
  return name;
}

/** Index units a write costs: an item entering, staying in or leaving `gsi1` is written there too. */
function indexUnits(tally: Tally, key: string, after: Attributes | undefined, units: number): number {
  const before = tally.indexed.has(key);
  const now = after !== undefined && ledgerKeySchema.gsi1PartitionKey in after;
  if (now) tally.indexed.add(key);
  else tally.indexed.delete(key);
  return before || now ? units : 0;
}

/** Each item at twice the standard rate; an update, delete or condition check is sized at 1 KB. */
function transactionUnits(tally: Tally, input: Attributes): number {
  let total = 0;
  for (const entry of (input.TransactItems as Attributes[] | undefined) ?? []) {
    const put = (entry.Put as { Item: Attributes } | undefined)?.Item;
    const other = Object.values(entry)[0] as { Key?: Attributes } | undefined;
    const units = put === undefined ? 1 : writeUnits(put);
    total += 2 * units;
    if (entry.ConditionCheck !== undefined) continue;
    const key = keyOf(put ?? other?.Key);
    if (put !== undefined) total += 2 * indexUnits(tally, key, put, units);
    else if (entry.Delete !== undefined) total += 2 * indexUnits(tally, key, undefined, units);
    else if (tally.indexed.has(key)) total += 2 * units;
  }
  return total;
}

/** The index's share of a standard write whose base-table units the emulator reported. */
function indexShare(tally: Tally, command: string, input: Attributes, units: number): number {
  if (command === 'PutItem') {
    const item = input.Item as Attributes;
    return indexUnits(tally, keyOf(item), item, units);
  }
  if (command === 'UpdateItem') {
    const key = keyOf(input.Key as Attributes);
    const names = `${String(input.UpdateExpression ?? '')} ${JSON.stringify(input.ExpressionAttributeNames ?? {})}`;
    if (names.includes(ledgerKeySchema.gsi1PartitionKey)) tally.indexed.add(key);
    return tally.indexed.has(key) ? units : 0;
  }
  if (command === 'DeleteItem') return indexUnits(tally, keyOf(input.Key as Attributes), undefined, units);
  let total = 0;
  if (command === 'BatchWriteItem') {
    for (const requests of Object.values(input.RequestItems as Record<string, Attributes[]>)) {
      for (const request of requests) {
        const item = (request.PutRequest as { Item: Attributes } | undefined)?.Item;
        const key = (request.DeleteRequest as { Key: Attributes } | undefined)?.Key;
        total += indexUnits(tally, keyOf(item ?? key), item, item === undefined ? 1 : writeUnits(item));
      }
    }
  }
  return total;
}

type Next = (args: { input: unknown }) => Promise<{ output: unknown }>;
type Middleware = (
  next: Next,
  context: { commandName?: string },
) => (args: { input: unknown }) => Promise<{ output: unknown }>;
const readCommands = new Set(['GetItem', 'BatchGetItem', 'Query', 'Scan']);

function dynamoMiddleware(tally: Tally): Middleware {
  return (next, context) => async (args) => {
    const command = countCall(tally, 'DynamoDB', context.commandName);
    const input = args.input as Attributes;
    if (command === 'TransactWriteItems') {
      tally.usage.dynamoWriteUnits += transactionUnits(tally, input);
      return next(args);
    }
    input.ReturnConsumedCapacity = 'TOTAL';
    const result = await next(args);
    const consumed = (result.output as { ConsumedCapacity?: unknown }).ConsumedCapacity;
    const units = ([] as Array<{ CapacityUnits?: number }>)
      .concat((consumed as { CapacityUnits?: number } | undefined) ?? [])
      .reduce((n, c) => n + (c.CapacityUnits ?? 0), 0);
    if (readCommands.has(command)) tally.usage.dynamoReadUnits += units;
    else tally.usage.dynamoWriteUnits += units + indexShare(tally, command, input, units);
    return result;
  };
}

function requestMiddleware(tally: Tally, service: 'S3' | 'SQS' | 'SNS'): Middleware {
  return (next, context) => async (args) => {
    const command = countCall(tally, service, context.commandName);
    const input = args.input as Attributes;
    if (service === 'S3') {
      if (s3PutClass.has(command)) tally.usage.s3PutClass++;
      else if (!s3Free.has(command)) tally.usage.s3GetClass++;
    } else if (service === 'SQS') {
      tally.usage.sqsRequests++;
      if (command === 'SendMessage') tally.usage.sqsMessagesSent++;
      if (command === 'SendMessageBatch') tally.usage.sqsMessagesSent += (input.Entries as unknown[]).length;
    } else if (command === 'Publish') {
      tally.usage.snsPublishes++;
    } else if (command === 'PublishBatch') {
      tally.usage.snsPublishes += (input.PublishBatchRequestEntries as unknown[]).length;
    }
    return next(args);
  };
}

const freshUsage = (): AwsUsage => ({
  dynamoReadUnits: 0,
  dynamoWriteUnits: 0,
  calls: {},
  s3PutClass: 0,
  s3GetClass: 0,
  sqsRequests: 0,
  sqsMessagesSent: 0,
  snsPublishes: 0,
});

/** Adds the counting middleware to the clients given (the same client objects the code under test uses). */
export function countAwsCalls(clients: {
  dynamodb?: DynamoDBClient;
  s3?: S3Client;
  sqs?: SQSClient;
  sns?: SNSClient;
}): AwsCallCounter {
  const tally: Tally = { usage: freshUsage(), indexed: new Set() };
  const options = { step: 'initialize', priority: 'high', name: 'countAwsUsage' } as const;
  // The stacks' own middleware types differ per client; these middlewares touch only `input` and `output`.
  clients.dynamodb?.middlewareStack.add(dynamoMiddleware(tally) as never, options);
  clients.s3?.middlewareStack.add(requestMiddleware(tally, 'S3') as never, options);
  clients.sqs?.middlewareStack.add(requestMiddleware(tally, 'SQS') as never, options);
  clients.sns?.middlewareStack.add(requestMiddleware(tally, 'SNS') as never, options);
  return {
    usage: () => structuredClone(tally.usage),
    reset: () => {
      tally.usage = freshUsage();
    },
  };
}
