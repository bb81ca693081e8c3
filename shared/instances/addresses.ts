import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
} from '@aws-sdk/lib-dynamodb';
import { ledgerKeySchema as k, ledgerIndex, ledgerItems } from '../ledger/table.ts';
import { isConditionFailure } from './dynamo-support.ts';
import type { AddressConflict, InstancePage, InstanceRecord } from './types.ts';

/** Runs a ledger call, turning outages into TransientError (the repository's own wrapper). */
export type LedgerCall = <T>(action: string, call: () => Promise<T>) => Promise<T>;

/**
 * Source-address ownership in the ledger: one item per address (`address#{ip}` / `owner`) naming its
 * instance. Claims are conditional puts (absent, or already this instance's), so of two PUTs racing for
 * one address exactly one wins; a lookup is a single GetItem.
 */
export function createAddressBook(doc: DynamoDBDocumentClient, table: string, ledgerCall: LedgerCall) {
  const book: AddressTable = { doc, table, ledgerCall };
  return {
    claim: (id: string, addresses: readonly string[]) => claim(book, id, addresses),
    release: (id: string, addresses: readonly string[]) => release(book, id, addresses),
    holderOf: (address: string) => holderOf(book, address),
    list: (
      limit: number,
      after: string | undefined,
      toRecord: (id: string, item: Record<string, unknown>) => InstanceRecord,
    ) => list(book, limit, after, toRecord),
  };
}

interface AddressTable {
  doc: DynamoDBDocumentClient;
  table: string;
  ledgerCall: LedgerCall;
}

async function holderOf(
  { doc, table, ledgerCall }: AddressTable,
  address: string,
): Promise<string | undefined> {
  const result = await ledgerCall('get address', () =>
    doc.send(new GetCommand({ TableName: table, Key: ledgerItems.address(address), ConsistentRead: true })),
  );
  const holder = result.Item?.instanceId;
  return typeof holder === 'string' ? holder : undefined;
}

async function release(
  { doc, table, ledgerCall }: AddressTable,
  id: string,
  addresses: readonly string[],
): Promise<void> {
  for (const address of addresses) {
    try {
      await ledgerCall('release address', () =>
        doc.send(
          new DeleteCommand({
            TableName: table,
            Key: ledgerItems.address(address),
            ConditionExpression: 'instanceId = :id',
            ExpressionAttributeValues: { ':id': id },
          }),
        ),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
  }
}

/** All or none: on a conflict (or an outage) the addresses this call claimed are released again. */
async function claim(
  book: AddressTable,
  id: string,
  addresses: readonly string[],
): Promise<AddressConflict | undefined> {
  const { doc, table, ledgerCall } = book;
  const claimed: string[] = [];
  for (const address of addresses) {
    try {
      await ledgerCall('claim address', () =>
        doc.send(
          new PutCommand({
            TableName: table,
            Item: { ...ledgerItems.address(address), instanceId: id },
            ConditionExpression: 'attribute_not_exists(#pk) OR instanceId = :id',
            ExpressionAttributeNames: { '#pk': k.partitionKey },
            ExpressionAttributeValues: { ':id': id },
            ReturnValues: 'ALL_OLD',
          }),
        ),
      ).then((result) => {
        if (result.Attributes === undefined) claimed.push(address);
      });
    } catch (error) {
      if (!isConditionFailure(error)) {
        await release(book, id, claimed).catch(() => undefined);
        throw error;
      }
      await release(book, id, claimed);
      return { address, holder: (await holderOf(book, address)) ?? 'another instance' };
    }
  }
  return undefined;
}

async function list(
  { doc, table, ledgerCall }: AddressTable,
  limit: number,
  after: string | undefined,
  toRecord: (id: string, item: Record<string, unknown>) => InstanceRecord,
): Promise<InstancePage> {
  const result = await ledgerCall('list instances', () =>
    doc.send(
      new QueryCommand({
        TableName: table,
        IndexName: k.gsi1Name,
        KeyConditionExpression: after === undefined ? '#g1pk = :p' : '#g1pk = :p AND #g1sk > :after',
        ExpressionAttributeNames: {
          '#g1pk': k.gsi1PartitionKey,
          ...(after === undefined ? {} : { '#g1sk': k.gsi1SortKey }),
        },
        ExpressionAttributeValues: {
          ':p': ledgerIndex.instances,
          ...(after === undefined ? {} : { ':after': after }),
        },
        Limit: limit,
      }),
    ),
  );
  const records = (result.Items ?? []).map((item) => toRecord(String(item.id), item));
  const last = records.at(-1);
  return {
    records,
    ...(result.LastEvaluatedKey !== undefined && last !== undefined ? { next: last.id } : {}),
  };
}
