import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConditionalCheckFailedException,
  IdempotentParameterMismatchException,
  TransactionCanceledException,
} from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, QueryCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { startLedgerStandIn } from '../../local/emulators.ts';
import { parseConfig } from '../../shared/config.ts';
import { ledgerIndexEntry, ledgerKey } from '../../shared/ledger/table.ts';
import { emulatorClients, freshTable } from '../support/emulators.ts';

/**
 * TransactWriteItems on the dynalite the tests and `cldist serve` run (local/dynalite-transactions.cjs),
 * through the AWS SDK, so what it answers is what the SDK makes of DynamoDB's own answers.
 */
const clients = emulatorClients();
const { doc } = clients;
let table: string;

beforeAll(async () => {
  table = await freshTable(clients, 'tx');
});

function item(pk: string, value: string, indexed = true) {
  return {
    ...ledgerKey(pk, 'meta'),
    ...(indexed ? ledgerIndexEntry('tx-index', pk) : {}),
    value,
  };
}

function put(pk: string, value: string, condition?: string) {
  return {
    Put: {
      TableName: table,
      Item: item(pk, value),
      ...(condition === undefined
        ? {}
        : {
            ConditionExpression: condition,
            ExpressionAttributeNames: { '#pk': 'pk' },
          }),
    },
  };
}

async function read(pk: string): Promise<Record<string, unknown> | undefined> {
  const got = await doc.send(
    new GetCommand({ TableName: table, Key: ledgerKey(pk, 'meta'), ConsistentRead: true }),
  );
  return got.Item;
}

async function indexed(prefix: string): Promise<string[]> {
  const page = await doc.send(
    new QueryCommand({
      TableName: table,
      IndexName: 'gsi1',
      KeyConditionExpression: 'gsi1pk = :p AND begins_with(gsi1sk, :s)',
      ExpressionAttributeValues: { ':p': 'tx-index', ':s': prefix },
    }),
  );
  return (page.Items ?? []).map((entry) => `${String(entry.pk)}=${String(entry.value)}`).sort();
}

async function cancellation(send: Promise<unknown>): Promise<TransactionCanceledException> {
  const error = await send.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(TransactionCanceledException);
  return error as TransactionCanceledException;
}

describe('dynalite TransactWriteItems', () => {
  it('writes every item and its index entry, or on one failed condition nothing, naming that item', async () => {
    const p = `all-${randomUUID()}`;
    await doc.send(new PutCommand({ TableName: table, Item: item(`${p}-b`, 'before') }));
    const failed = await cancellation(
      doc.send(
        new TransactWriteCommand({
          TransactItems: [
            put(`${p}-a`, 'tx', 'attribute_not_exists(#pk)'),
            {
              Put: {
                ...put(`${p}-b`, 'tx', 'attribute_not_exists(#pk)').Put,
                ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
              },
            },
            put(`${p}-c`, 'tx', 'attribute_not_exists(#pk)'),
          ],
        }),
      ),
    );
    expect(failed.CancellationReasons?.map((reason) => reason.Code)).toEqual([
      'None',
      'ConditionalCheckFailed',
      'None',
    ]);
    expect(failed.CancellationReasons?.[1]?.Item?.value).toEqual({ S: 'before' });
    expect(failed.message).toContain('ConditionalCheckFailed');
    expect(await read(`${p}-a`)).toBeUndefined();
    expect(await read(`${p}-c`)).toBeUndefined();
    expect(await indexed(p)).toEqual([`${p}-b=before`]);

    await doc.send(
      new TransactWriteCommand({
        TransactItems: [
          put(`${p}-a`, 'tx', 'attribute_not_exists(#pk)'),
          put(`${p}-b`, 'replaced', 'attribute_exists(#pk)'),
          put(`${p}-c`, 'tx'),
        ],
      }),
    );
    expect((await read(`${p}-b`))?.value).toBe('replaced');
    expect(await indexed(p)).toEqual([`${p}-a=tx`, `${p}-b=replaced`, `${p}-c=tx`]);
  });

  it('deletes items with their index entries, and a failed ConditionCheck cancels the rest', async () => {
    const p = `del-${randomUUID()}`;
    await doc.send(new TransactWriteCommand({ TransactItems: [put(`${p}-a`, '1'), put(`${p}-b`, '1')] }));
    const guard = {
      ConditionCheck: {
        TableName: table,
        Key: ledgerKey(`${p}-b`, 'meta'),
        ConditionExpression: '#v = :v',
        ExpressionAttributeNames: { '#v': 'value' },
        ExpressionAttributeValues: { ':v': '2' },
      },
    };
    const remove = { Delete: { TableName: table, Key: ledgerKey(`${p}-a`, 'meta') } };
    const failed = await cancellation(doc.send(new TransactWriteCommand({ TransactItems: [remove, guard] })));
    expect(failed.CancellationReasons?.map((reason) => reason.Code)).toEqual([
      'None',
      'ConditionalCheckFailed',
    ]);
    expect(await indexed(p)).toEqual([`${p}-a=1`, `${p}-b=1`]);

    guard.ConditionCheck.ExpressionAttributeValues[':v'] = '1';
    await doc.send(new TransactWriteCommand({ TransactItems: [remove, guard] }));
    expect(await read(`${p}-a`)).toBeUndefined();
    expect(await indexed(p)).toEqual([`${p}-b=1`]);
  });

  it('moves an index entry when a Put changes its index key, and drops it when the new item has none', async () => {
    const p = `move-${randomUUID()}`;
    await doc.send(new TransactWriteCommand({ TransactItems: [put(`${p}-a`, '1'), put(`${p}-b`, '1')] }));
    await doc.send(
      new TransactWriteCommand({
        TransactItems: [
          { Put: { TableName: table, Item: { ...item(`${p}-a`, '2'), gsi1sk: `${p}-z` } } },
          { Put: { TableName: table, Item: item(`${p}-b`, '2', false) } },
        ],
      }),
    );
    expect(await indexed(p)).toEqual([`${p}-a=2`]);
    expect(await indexed(`${p}-a`)).toEqual([]);
  });

  it('refuses what it does not do, saying what instead, and changes nothing', async () => {
    const p = `bad-${randomUUID()}`;
    const refused = async (input: ConstructorParameters<typeof TransactWriteCommand>[0]) => {
      const error = await doc.send(new TransactWriteCommand(input)).then(
        () => undefined,
        (caught: unknown) => caught as Error,
      );
      expect(error?.name).toBe('ValidationException');
      return error?.message ?? '';
    };
    expect(
      await refused({
        TransactItems: [
          {
            Update: {
              TableName: table,
              Key: ledgerKey(`${p}-a`, 'meta'),
              UpdateExpression: 'SET #v = :v',
              ExpressionAttributeNames: { '#v': 'value' },
              ExpressionAttributeValues: { ':v': '1' },
            },
          },
        ],
      }),
    ).toMatch(/Update is not supported.*Put/);
    expect(await refused({ TransactItems: [put(`${p}-a`, '1'), put(`${p}-a`, '2')] })).toMatch(
      /multiple operations on one item/,
    );
    expect(
      await refused({ TransactItems: Array.from({ length: 101 }, (_, i) => put(`${p}-${i}`, '1')) }),
    ).toMatch(/less than or equal to 100/);
    expect(await refused({ TransactItems: [put(`${p}-a`, '1', 'attribute_not_exists(#pk) AND')] })).toMatch(
      /ConditionExpression/,
    );
    expect(await indexed(p)).toEqual([]);
  });

  it('answers a repeated token without writing again, and refuses the token with other items', async () => {
    const p = `token-${randomUUID()}`;
    const token = randomUUID();
    const input = {
      ClientRequestToken: token,
      TransactItems: [put(`${p}-a`, '1', 'attribute_not_exists(#pk)')],
    };
    await doc.send(new TransactWriteCommand(input));
    await doc.send(new TransactWriteCommand(input));
    const error = await doc
      .send(new TransactWriteCommand({ ClientRequestToken: token, TransactItems: [put(`${p}-b`, '1')] }))
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(IdempotentParameterMismatchException);
    expect(await indexed(p)).toEqual([`${p}-a=1`]);
  });

  it('is isolated from plain conditional writes of the same items: every key has exactly one winner', async () => {
    for (let round = 0; round < 5; round++) {
      const p = `race-${round}-${randomUUID()}`;
      const keys = Array.from({ length: 20 }, (_, i) => `${p}-${String(i).padStart(2, '0')}`);
      const transaction = doc
        .send(
          new TransactWriteCommand({
            TransactItems: keys.map((key) => put(key, 'tx', 'attribute_not_exists(#pk)')),
          }),
        )
        .then(
          () => 'won',
          (error: unknown) => {
            if (error instanceof TransactionCanceledException) return 'lost';
            throw error;
          },
        );
      const singles = keys.map((key) =>
        doc
          .send(
            new PutCommand({
              TableName: table,
              Item: item(key, 'single'),
              ConditionExpression: 'attribute_not_exists(#pk)',
              ExpressionAttributeNames: { '#pk': 'pk' },
            }),
          )
          .then(
            () => true,
            (error: unknown) => {
              if (error instanceof ConditionalCheckFailedException) return false;
              throw error;
            },
          ),
      );
      const [outcome, ...won] = await Promise.all([transaction, ...singles]);
      const stored = await Promise.all(keys.map(async (key) => (await read(key))?.value));
      const expected = keys.map((_, i) =>
        outcome === 'won' ? 'tx' : won[i] === true ? 'single' : undefined,
      );
      expect(stored).toEqual(expected);
      // All or nothing: a transaction that lost wrote no key, so every plain write found its key free.
      expect(won).toEqual(keys.map(() => outcome === 'lost'));
      expect(await indexed(p)).toEqual(
        keys.flatMap((key, i) => (expected[i] === undefined ? [] : [`${key}=${expected[i]}`])),
      );
    }
  });

  it('is answered the same by the ledger thread `cldist serve` runs, on disk', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cldist-tx-thread-'));
    const ledger = await startLedgerStandIn({ ledgerPath: dir, config: parseConfig({}) });
    try {
      const send = (value: string, condition: string) =>
        ledger.clients.doc.send(
          new TransactWriteCommand({
            TransactItems: ['a', 'b'].map((pk) => ({
              Put: {
                TableName: ledger.tableName,
                Item: { ...ledgerKey(`thread-${pk}`, 'meta'), value },
                ConditionExpression: condition,
                ExpressionAttributeNames: { '#pk': 'pk' },
              },
            })),
          }),
        );
      await send('1', 'attribute_not_exists(#pk)');
      const failed = await cancellation(send('2', 'attribute_not_exists(#pk)'));
      expect(failed.CancellationReasons?.map((reason) => reason.Code)).toEqual([
        'ConditionalCheckFailed',
        'ConditionalCheckFailed',
      ]);
      const got = await ledger.clients.doc.send(
        new GetCommand({
          TableName: ledger.tableName,
          Key: ledgerKey('thread-b', 'meta'),
          ConsistentRead: true,
        }),
      );
      expect(got.Item?.value).toBe('1');
    } finally {
      await ledger.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
