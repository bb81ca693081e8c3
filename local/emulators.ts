import { mkdirSync } from 'node:fs';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { awsClientConfig } from '../shared/aws-client-config.ts';
import type { AwsClients } from '../shared/aws-clients.ts';
import type { CldistConfig } from '../shared/config.ts';
import type { LedgerCompactionOptions, LedgerThread, LedgerThreadEvent } from './runtime/ledger-thread.ts';

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

/** dynalite on its own thread, with the ledger table created as the stack creates it. */
export interface LedgerStandIn {
  clients: { dynamodb: DynamoDBClient; doc: DynamoDBDocumentClient };
  tableName: string;
  /** The instance audit's own table (`auditTableFor`), created beside the ledger table. */
  auditTableName: string;
  endpoint: string;
  thread: Pick<LedgerThread, 'crashes' | 'ready' | 'getItem' | 'writeItems'>;
  close(): Promise<void>;
}

/** fauxqs with the jobs queue, its dead-letter queue and the topic, created as the stack creates them. */
export interface QueueStandIn {
  clients: Pick<AwsClients, 'sqs' | 'sns'>;
  resources: Omit<LocalResources, 'tableName'>;
  endpoint: string;
  close(): Promise<void>;
}

export interface LedgerStandInOptions {
  /** Folder for dynalite's LevelDB files, so the ledger survives a restart. */
  ledgerPath: string;
  config: Pick<CldistConfig, 'table'>;
  region?: string;
  /** A crash and restart of the ledger's thread (a full disk, an I/O error), or a compaction, for the log. */
  onLedgerEvent?: (event: LedgerThreadEvent) => void;
  /** When LevelDB is compacted whole; the thread's defaults otherwise. */
  compaction?: LedgerCompactionOptions;
}

export interface QueueStandInOptions {
  config: Pick<CldistConfig, 'queue' | 'topic'>;
  /** Receives before SQS moves a job to the dead-letter queue. */
  maxReceives: number;
  /** Default visibility of a received job. */
  visibilityTimeoutSeconds: number;
  region?: string;
}

export type EmulatorOptions = LedgerStandInOptions & QueueStandInOptions;

/**
 * Start dynalite and create the ledger table (already there on disk after the first start). The SDK and
 * dynalite are loaded here, so a command that never opens the ledger never pays for them.
 */
export async function startLedgerStandIn(options: LedgerStandInOptions): Promise<LedgerStandIn> {
  mkdirSync(options.ledgerPath, { recursive: true, mode: 0o700 });
  const { startLedgerThread } = await import('./runtime/ledger-thread.ts');
  // The thread loads dynalite and opens LevelDB while this one loads the SDK.
  const [loaded, started] = await Promise.allSettled([
    Promise.all([
      import('@aws-sdk/client-dynamodb'),
      import('@aws-sdk/lib-dynamodb'),
      import('../shared/ledger/table.ts'),
    ]),
    startLedgerThread({
      path: options.ledgerPath,
      onEvent: options.onLedgerEvent,
      ...(options.compaction === undefined ? {} : { compaction: options.compaction }),
    }),
  ]);
  if (started.status === 'rejected') throw started.reason;
  const thread = started.value;
  if (loaded.status === 'rejected') {
    await thread.close();
    throw loaded.reason;
  }
  const [dynamo, { DynamoDBDocumentClient }, { auditTableInput, ledgerTableInput }] = loaded.value;
  const dynamodb = new dynamo.DynamoDBClient(awsClientConfig(thread.endpoint, options.region));
  const doc = DynamoDBDocumentClient.from(dynamodb, { marshallOptions: { removeUndefinedValues: true } });
  const close = async (): Promise<void> => {
    doc.destroy();
    dynamodb.destroy();
    await thread.close();
  };
  const { table } = options.config;
  const auditTable = auditTableFor(table);
  // A ledger from an earlier start already holds its tables: one read each, and a create only when missing.
  const ensureTable = async (input: ReturnType<typeof ledgerTableInput>): Promise<void> => {
    const name = input.TableName;
    const described = await dynamodb
      .send(new dynamo.DescribeTableCommand({ TableName: name }))
      .catch((error: unknown) => {
        if (error instanceof dynamo.ResourceNotFoundException) return undefined;
        throw error;
      });
    if (described?.Table?.TableStatus === 'ACTIVE') return;
    try {
      await dynamodb.send(new dynamo.CreateTableCommand(input));
    } catch (error) {
      if (!(error instanceof dynamo.ResourceInUseException)) throw error;
    }
    // dynalite answers CreateTable with the table still CREATING for a moment: with the SDK's default
    // delays the waiter's second look would come 20 s later.
    await dynamo.waitUntilTableExists(
      { client: dynamodb, maxWaitTime: 30, minDelay: 0.05, maxDelay: 0.5 },
      { TableName: name },
    );
  };
  try {
    await Promise.all([ensureTable(ledgerTableInput(table)), ensureTable(auditTableInput(auditTable))]);
  } catch (error) {
    await close();
    throw error;
  }
  return {
    clients: { dynamodb, doc },
    tableName: table,
    auditTableName: auditTable,
    endpoint: thread.endpoint,
    thread,
    close,
  };
}

/**
 * The table of the instance audit on one machine: the ledger table's name with `-audit`. dynalite keeps
 * each table's items in a LevelDB key range of its own, so the audit items written on every fetch stay
 * out of the files that hold the records (see the instance repository's `auditTable`).
 */
export function auditTableFor(table: string): string {
  return `${table}-audit`;
}

/** Start fauxqs and create the queues and the topic; they live in memory, new each start. */
export async function startQueueStandIn(options: QueueStandInOptions): Promise<QueueStandIn> {
  const [{ startFauxqs }, sqsModule, snsModule] = await Promise.all([
    import('fauxqs'),
    import('@aws-sdk/client-sqs'),
    import('@aws-sdk/client-sns'),
  ]);
  const fauxqs = await startFauxqs({ port: 0, host: '127.0.0.1', logger: false });
  const endpoint = `http://127.0.0.1:${fauxqs.port}`;
  const sqs = new sqsModule.SQSClient(awsClientConfig(endpoint, options.region));
  const sns = new snsModule.SNSClient(awsClientConfig(endpoint, options.region));
  const close = async (): Promise<void> => {
    sqs.destroy();
    sns.destroy();
    await fauxqs.stop();
  };
  try {
    const { config } = options;
    const dlq = await sqs.send(new sqsModule.CreateQueueCommand({ QueueName: config.queue.deadLetter }));
    const deadLetterQueueUrl = dlq.QueueUrl ?? '';
    const dlqAttributes = await sqs.send(
      new sqsModule.GetQueueAttributesCommand({ QueueUrl: deadLetterQueueUrl, AttributeNames: ['QueueArn'] }),
    );
    const jobs = await sqs.send(
      new sqsModule.CreateQueueCommand({
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
    const topic = await sns.send(new snsModule.CreateTopicCommand({ Name: config.topic }));
    return {
      clients: { sqs, sns },
      endpoint,
      resources: { jobsQueueUrl: jobs.QueueUrl ?? '', deadLetterQueueUrl, topicArn: topic.TopicArn ?? '' },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/**
 * Start both stand-ins, with an S3 client for real AWS (or `AWS_ENDPOINT_URL_S3`). Every create is
 * idempotent: the queues live in memory (new each start) and the table on disk.
 */
export async function startEmulators(options: EmulatorOptions): Promise<Emulators> {
  const [queueStarted, ledgerStarted] = await Promise.allSettled([
    startQueueStandIn(options),
    startLedgerStandIn(options),
  ]);
  if (queueStarted.status === 'rejected' || ledgerStarted.status === 'rejected') {
    if (queueStarted.status === 'fulfilled') await queueStarted.value.close();
    if (ledgerStarted.status === 'fulfilled') await ledgerStarted.value.close();
    throw queueStarted.status === 'rejected'
      ? queueStarted.reason
      : (ledgerStarted as PromiseRejectedResult).reason;
  }
  const queue = queueStarted.value;
  const ledger = ledgerStarted.value;
  const { S3Client } = await import('@aws-sdk/client-s3');
  const s3 = new S3Client(awsClientConfig(undefined, options.region));
  return {
    clients: { ...queue.clients, ...ledger.clients, s3 },
    resources: { tableName: ledger.tableName, ...queue.resources },
    endpoints: { fauxqs: queue.endpoint, dynamodb: ledger.endpoint },
    ledger: ledger.thread,
    async close() {
      s3.destroy();
      await queue.close();
      await ledger.close();
    },
  };
}
