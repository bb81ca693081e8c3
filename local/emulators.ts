import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CreateTableCommand, ResourceInUseException, waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import { CreateTopicCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import dynalite from 'dynalite';
import { startFauxqs } from 'fauxqs';
import { type AwsClients, makeAwsClients } from '../shared/aws-clients.ts';
import type { CldistConfig } from '../shared/config.ts';
import { ledgerTableInput } from '../shared/ledger/table.ts';

/** The names and addresses of what the runner created, the local twin of the stack's outputs. */
export interface LocalResources {
  tableName: string;
  jobsQueueUrl: string;
  deadLetterQueueUrl: string;
  topicArn: string;
}

export interface Emulators {
  /** SQS, SNS and DynamoDB point at the stand-ins; S3 at real AWS (or `AWS_ENDPOINT_URL_S3`), for `--store s3://`. */
  clients: AwsClients;
  resources: LocalResources;
  endpoints: { fauxqs: string; dynamodb: string };
  close(): Promise<void>;
}

export interface EmulatorOptions {
  /** Folder for dynalite's LevelDB files, so the ledger survives a restart. */
  ledgerPath: string;
  config: Pick<CldistConfig, 'table' | 'queue' | 'topic'>;
  /** Receives before SQS moves a job to the dead-letter queue. */
  maxReceives: number;
  /** Default visibility of a received job. */
  visibilityTimeoutSeconds: number;
  region?: string;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/**
 * Start the in-process stand-ins and create the table, queues and topic the way the CDK stack does. Every
 * create is idempotent: the queues live in memory (new each start) and the table on disk (already there
 * after the first start).
 */
export async function startEmulators(options: EmulatorOptions): Promise<Emulators> {
  mkdirSync(options.ledgerPath, { recursive: true });
  const fauxqs = await startFauxqs({ port: 0, host: '127.0.0.1', logger: false });
  const dynamo: Server = dynalite({ path: options.ledgerPath, createTableMs: 0, updateTableMs: 0 });
  let dynamoPort: number;
  try {
    dynamoPort = await listen(dynamo);
  } catch (error) {
    await fauxqs.stop();
    throw error;
  }
  const endpoints = { fauxqs: `http://127.0.0.1:${fauxqs.port}`, dynamodb: `http://127.0.0.1:${dynamoPort}` };
  const clients = makeAwsClients({
    region: options.region,
    sqs: endpoints.fauxqs,
    sns: endpoints.fauxqs,
    dynamodb: endpoints.dynamodb,
  });
  const close = async (): Promise<void> => {
    clients.sqs.destroy();
    clients.sns.destroy();
    clients.doc.destroy();
    clients.dynamodb.destroy();
    clients.s3.destroy();
    await fauxqs.stop();
    dynamo.closeAllConnections();
    await new Promise<void>((resolve) => dynamo.close(() => resolve()));
  };
  try {
    const { config } = options;
    try {
      await clients.dynamodb.send(new CreateTableCommand(ledgerTableInput(config.table)));
    } catch (error) {
      if (!(error instanceof ResourceInUseException)) throw error;
    }
    await waitUntilTableExists({ client: clients.dynamodb, maxWaitTime: 30 }, { TableName: config.table });

    const dlq = await clients.sqs.send(new CreateQueueCommand({ QueueName: config.queue.deadLetter }));
    const deadLetterQueueUrl = dlq.QueueUrl ?? '';
    const dlqAttributes = await clients.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: deadLetterQueueUrl, AttributeNames: ['QueueArn'] }),
    );
    const jobs = await clients.sqs.send(
      new CreateQueueCommand({
        QueueName: config.queue.jobs,
        Attributes: {
          VisibilityTimeout: String(options.visibilityTimeoutSeconds),
          RedrivePolicy: JSON.stringify({
            deadLetterTargetArn: dlqAttributes.Attributes?.QueueArn ?? '',
            maxReceiveCount: options.maxReceives,
          }),
        },
      }),
    );
    const topic = await clients.sns.send(new CreateTopicCommand({ Name: config.topic }));
    return {
      clients,
      endpoints,
      resources: {
        tableName: config.table,
        jobsQueueUrl: jobs.QueueUrl ?? '',
        deadLetterQueueUrl,
        topicArn: topic.TopicArn ?? '',
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
