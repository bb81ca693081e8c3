import { mkdirSync } from 'node:fs';
import { CreateTableCommand, ResourceInUseException, waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import { CreateTopicCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { startFauxqs } from 'fauxqs';
import { type AwsClients, makeAwsClients } from '../shared/aws-clients.ts';
import type { CldistConfig } from '../shared/config.ts';
import { ledgerTableInput } from '../shared/ledger/table.ts';
import { type LedgerThread, type LedgerThreadEvent, startLedgerThread } from './runtime/ledger-thread.ts';

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
  /** dynalite's own thread: how often it crashed, and a promise that it is back. */
  ledger: Pick<LedgerThread, 'crashes' | 'ready'>;
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
  /** A crash and restart of the ledger's thread (a full disk, an I/O error), for the runner's log. */
  onLedgerEvent?: (event: LedgerThreadEvent) => void;
}

/**
 * Start the in-process stand-ins and create the table, queues and topic the way the CDK stack does. Every
 * create is idempotent: the queues live in memory (new each start) and the table on disk (already there
 * after the first start).
 */
export async function startEmulators(options: EmulatorOptions): Promise<Emulators> {
  mkdirSync(options.ledgerPath, { recursive: true, mode: 0o700 });
  const fauxqs = await startFauxqs({ port: 0, host: '127.0.0.1', logger: false });
  let ledger: LedgerThread;
  try {
    ledger = await startLedgerThread({ path: options.ledgerPath, onEvent: options.onLedgerEvent });
  } catch (error) {
    await fauxqs.stop();
    throw error;
  }
  const endpoints = { fauxqs: `http://127.0.0.1:${fauxqs.port}`, dynamodb: ledger.endpoint };
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
    await ledger.close();
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
      ledger,
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
