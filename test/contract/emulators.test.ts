import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { ledgerKeySchema as k } from '../../shared/ledger/table.ts';
import { emulatorClients, freshBucket, freshQueue, freshTable } from '../support/emulators.ts';

describe('test harness emulators', () => {
  const clients = emulatorClients();

  it('gives each test its own bucket over the S3 protocol', async () => {
    const bucket = await freshBucket(clients);
    await clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'a/b.txt', Body: 'hello' }));
    const got = await clients.s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'a/b.txt' }));
    expect(await got.Body?.transformToString()).toBe('hello');
  });

  it('gives each test its own queue over the SQS protocol', async () => {
    const queue = await freshQueue(clients);
    await clients.sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: '{"v":1}' }));
    const got = await clients.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queue.url, WaitTimeSeconds: 1 }),
    );
    expect(got.Messages?.[0]?.Body).toBe('{"v":1}');
  });

  it('enforces DynamoDB conditional writes', async () => {
    const table = await freshTable(clients);
    const put = () =>
      clients.dynamodb.send(
        new PutItemCommand({
          TableName: table,
          Item: { [k.partitionKey]: { S: 'release#x' }, [k.sortKey]: { S: 'claim' } },
          ConditionExpression: 'attribute_not_exists(#pk)',
          ExpressionAttributeNames: { '#pk': k.partitionKey },
        }),
      );
    await put();
    await expect(put()).rejects.toMatchObject({ name: 'ConditionalCheckFailedException' });
  });
});
