import { randomBytes } from 'node:crypto';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { CreateTopicCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { inject } from 'vitest';
import { type AwsClients, makeAwsClients } from '../../shared/aws-clients.ts';
import { auditTableInput, ledgerTableInput } from '../../shared/ledger/table.ts';

/** Clients wired to the emulators started by the global setup. */
export function emulatorClients(): AwsClients {
  const fauxqs = inject('fauxqsEndpoint');
  return makeAwsClients({ s3: fauxqs, sqs: fauxqs, sns: fauxqs, dynamodb: inject('dynamodbEndpoint') });
}

/** A unique name per call, so tests never see each other's data even when run in parallel. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

export async function freshBucket(clients: AwsClients, prefix = 'bucket'): Promise<string> {
  const name = uniqueName(prefix);
  await clients.s3.send(new CreateBucketCommand({ Bucket: name }));
  return name;
}

export interface FreshQueue {
  url: string;
  arn: string;
  name: string;
}

export async function freshQueue(
  clients: AwsClients,
  prefix = 'queue',
  attributes: Record<string, string> = {},
): Promise<FreshQueue> {
  const name = uniqueName(prefix);
  const created = await clients.sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
  const url = created.QueueUrl ?? '';
  const attrs = await clients.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }),
  );
  return { url, arn: attrs.Attributes?.QueueArn ?? '', name };
}

export async function freshTopic(clients: AwsClients, prefix = 'topic'): Promise<string> {
  const created = await clients.sns.send(new CreateTopicCommand({ Name: uniqueName(prefix) }));
  return created.TopicArn ?? '';
}

/** A new ledger table with the production key schema (`audit`: the single-machine audit table's). */
export async function freshTable(clients: AwsClients, prefix = 'ledger', audit = false): Promise<string> {
  const name = uniqueName(prefix);
  await clients.dynamodb.send(new CreateTableCommand((audit ? auditTableInput : ledgerTableInput)(name)));
  return name;
}
