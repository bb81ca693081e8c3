import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
} from '@aws-sdk/lib-dynamodb';
import type { AddressConflict, InstancePage, InstanceRecord } from './types.ts';

/** Runs a ledger call, turning outages into TransientError (the repository's own wrapper). */
export type LedgerCall = <T>(action: string, call: () => Promise<T>) => Promise<T>;

const addressSk = 'owner';
/** Every instance record carries this gsi1 key, so records can be listed in id order without a scan. */
export const instanceListGsi1Pk = 'instance-list';

function addressPk(address: string): string {
  return `address#${address}`;
}

function isConditionFailure(error: unknown): boolean {
  return error instanceof Error && error.name === 'ConditionalCheckFailedException';
}

/**
 * Source-address ownership in the ledger: one item per address (`address#{ip}` / `owner`) naming its
 * instance. Claims are conditional puts (absent, or already this instance's), so of two PUTs racing for
 * one address exactly one wins; a lookup is a single GetItem.
 */
export function createAddressBook(doc: DynamoDBDocumentClient, table: string, ledgerCall: LedgerCall) {
  async function holderOf(address: string): Promise<string | undefined> {
    const result = await ledgerCall('get address', () =>
      doc.send(
        new GetCommand({
          TableName: table,
          Key: { pk: addressPk(address), sk: addressSk },
          ConsistentRead: true,
        }),
      ),
    );
    const holder = result.Item?.instanceId;
    return typeof holder === 'string' ? holder : undefined;
  }

  async function release(id: string, addresses: readonly string[]): Promise<void> {
    for (const address of addresses) {
      try {
        await ledgerCall('release address', () =>
          doc.send(
            new DeleteCommand({
              TableName: table,
              Key: { pk: addressPk(address), sk: addressSk },
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

  async function claim(id: string, addresses: readonly string[]): Promise<AddressConflict | undefined> {
    const claimed: string[] = [];
    for (const address of addresses) {
      try {
        await ledgerCall('claim address', () =>
          doc.send(
            new PutCommand({
              TableName: table,
              Item: { pk: addressPk(address), sk: addressSk, instanceId: id },
              ConditionExpression: 'attribute_not_exists(pk) OR instanceId = :id',
              ExpressionAttributeValues: { ':id': id },
              ReturnValues: 'ALL_OLD',
            }),
          ),
        ).then((result) => {
          if (result.Attributes === undefined) claimed.push(address);
        });
      } catch (error) {
        if (!isConditionFailure(error)) {
          await release(id, claimed).catch(() => undefined);
          throw error;
        }
        await release(id, claimed);
        return { address, holder: (await holderOf(address)) ?? 'another instance' };
      }
    }
    return undefined;
  }

  /**
   * One page in id order. With a prefix the key condition is a range, `[after or prefix, prefix + "~"]`
   * ("~" sorts after every character an id may hold), so a page never reads ids outside the prefix; the
   * range includes `after` itself, so one more item is asked for and `after` dropped.
   */
  async function list(
    limit: number,
    after: string | undefined,
    toRecord: (id: string, item: Record<string, unknown>) => InstanceRecord,
    prefix = '',
  ): Promise<InstancePage> {
    const ranged = prefix !== '';
    const low = after ?? prefix;
    const result = await ledgerCall('list instances', () =>
      doc.send(
        new QueryCommand({
          TableName: table,
          IndexName: 'gsi1',
          KeyConditionExpression: ranged
            ? 'gsi1pk = :p AND gsi1sk BETWEEN :low AND :high'
            : after === undefined
              ? 'gsi1pk = :p'
              : 'gsi1pk = :p AND gsi1sk > :after',
          ExpressionAttributeValues: {
            ':p': instanceListGsi1Pk,
            ...(ranged ? { ':low': low < prefix ? prefix : low, ':high': `${prefix}~` } : {}),
            ...(!ranged && after !== undefined ? { ':after': after } : {}),
          },
          Limit: ranged && after !== undefined ? limit + 1 : limit,
        }),
      ),
    );
    const records = (result.Items ?? [])
      .map((item) => toRecord(String(item.id), item))
      .filter((record) => record.id !== after && record.id.startsWith(prefix))
      .slice(0, limit);
    const last = records.at(-1);
    return {
      records,
      ...(result.LastEvaluatedKey !== undefined && last !== undefined ? { next: last.id } : {}),
    };
  }

  return { claim, release, holderOf, list };
}
