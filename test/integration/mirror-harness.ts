import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { SubscribeCommand } from '@aws-sdk/client-sns';
import {
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { createWorkerHandler } from '../../functions/mirror-worker/handler.ts';
import { type SimOrigin, simTrust, startSimOrigin } from '../../local/sim-origin/sim-origin.ts';
import type { AwsClients } from '../../shared/aws-clients.ts';
import { type CldistConfig, parseConfig } from '../../shared/config.ts';
import { createDynamoLedger, type Ledger } from '../../shared/ledger/ledger.ts';
import type { CldistEvent } from '../../shared/messages.ts';
import { createSqsJobQueue, type MirrorDeps, silentLogger } from '../../shared/mirror/deps.ts';
import { keyringChecker } from '../../shared/mirror/signatures.ts';
import { createSnsNotifier } from '../../shared/notify/index.ts';
import { createLocalStore } from '../../shared/store/index.ts';
import { createS3Store } from '../../shared/store/s3-store.ts';
import type { ObjectStore } from '../../shared/store/types.ts';
import { loadKeyring } from '../../shared/verify/keyring.ts';
import {
  emulatorClients,
  type FreshQueue,
  freshBucket,
  freshQueue,
  freshTable,
  freshTopic,
} from '../support/emulators.ts';

const MiB = 1024 * 1024;
export const clients = emulatorClients();

export type WorkerHandler = (event: SQSEvent) => Promise<SQSBatchResponse>;

export interface MirrorRig {
  origin: SimOrigin;
  config: CldistConfig;
  deps: MirrorDeps;
  ledger: Ledger;
  store: ObjectStore;
  jobsQueue: FreshQueue;
  eventsQueue: FreshQueue;
  /** Moves the rig's clock; the ledger and the cores all read it. */
  advance(ms: number): void;
  /** A worker handler over these deps, or over deps changed by `override`. */
  worker(override?: (deps: MirrorDeps) => MirrorDeps): WorkerHandler;
  /** Every event published to the topic so far, read back from its SQS subscription. */
  events(): Promise<CldistEvent[]>;
  close(): Promise<void>;
}

export interface RigOptions {
  channels?: string[];
  artifacts?: { name: string; required?: boolean }[];
  store?: 'local' | 's3';
  /** Seconds a received job stays invisible; a failed job comes back after this. */
  visibilityTimeout?: number;
  config?: Record<string, unknown>;
  /** Retention of every channel (`keepReleases`); off when unset. */
  keepReleases?: number;
}

/** dynalite answers CreateTable before the table is ACTIVE; the SDK waiter would then sleep 20 s. */
export async function tableActive(table: string, on: AwsClients = clients): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const out = await on.dynamodb.send(new DescribeTableCommand({ TableName: table }));
    if (out.Table?.TableStatus === 'ACTIVE') return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error(`table ${table} did not become ACTIVE`);
}

export async function startRig(options: RigOptions = {}): Promise<MirrorRig> {
  const origin = await startSimOrigin();
  const channels = options.channels ?? ['alpha', 'beta'];
  const config = parseConfig({
    channels: channels.map((name) => ({
      name,
      baseUrl: origin.baseUrl,
      ...(options.keepReleases === undefined ? {} : { keepReleases: options.keepReleases }),
    })),
    boards: ['amd64-usr'],
    artifacts: options.artifacts ?? [{ name: 'version.txt' }, { name: 'image.bin' }],
    limits: { requestTimeoutSeconds: 5, maxResumes: 3 },
    worker: { partSizeMiB: 5, partsInFlight: 2 },
    ...options.config,
  });
  const table = await freshTable(clients);
  await tableActive(table);
  const jobsQueue = await freshQueue(clients, 'jobs', {
    VisibilityTimeout: String(options.visibilityTimeout ?? 30),
  });
  const eventsQueue = await freshQueue(clients, 'events');
  const topicArn = await freshTopic(clients);
  await clients.sns.send(
    new SubscribeCommand({
      TopicArn: topicArn,
      Protocol: 'sqs',
      Endpoint: eventsQueue.arn,
      Attributes: { RawMessageDelivery: 'true' },
    }),
  );
  let folder: string | undefined;
  let store: ObjectStore;
  if (options.store === 's3') {
    store = createS3Store(clients.s3, {
      bucket: await freshBucket(clients),
      partSizeBytes: 5 * MiB,
      partsInFlight: 2,
    });
  } else {
    folder = await mkdtemp(join(tmpdir(), 'cldist-mirror-'));
    store = createLocalStore(folder);
  }
  let offset = 0;
  const clock = () => new Date(Date.now() + offset);
  const ledger = createDynamoLedger(clients.doc, table, { clock });
  const trust = simTrust(origin);
  const keyring = await loadKeyring(trust.armoredKeys, trust.trustedFingerprints);
  const deps: MirrorDeps = {
    ledger,
    store,
    notifier: createSnsNotifier(clients.sns, topicArn),
    jobs: createSqsJobQueue(clients.sqs, jobsQueue.url),
    signatures: keyringChecker(keyring),
    clock,
    logger: silentLogger,
    leaseSeconds: 60,
  };
  const seen: CldistEvent[] = [];
  return {
    origin,
    config,
    deps,
    ledger,
    store,
    jobsQueue,
    eventsQueue,
    advance(ms) {
      offset += ms;
    },
    worker(override) {
      const own = override === undefined ? deps : override(deps);
      return createWorkerHandler(async () => ({ deps: own, config }), silentLogger);
    },
    async events() {
      for (;;) {
        const got = await clients.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: eventsQueue.url,
            MaxNumberOfMessages: 10,
            WaitTimeSeconds: 0,
          }),
        );
        const messages = got.Messages ?? [];
        if (messages.length === 0) return seen;
        for (const message of messages) seen.push(JSON.parse(message.Body ?? '{}') as CldistEvent);
        await clients.sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: eventsQueue.url,
            Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle ?? '' })),
          }),
        );
      }
    },
    async close() {
      await origin.close();
      if (folder !== undefined) await rm(folder, { recursive: true, force: true });
    },
  };
}

function toRecord(message: Message, queue: FreshQueue): SQSRecord {
  const attributes = message.Attributes ?? {};
  return {
    messageId: message.MessageId ?? '',
    receiptHandle: message.ReceiptHandle ?? '',
    body: message.Body ?? '',
    attributes: {
      ApproximateReceiveCount: attributes.ApproximateReceiveCount ?? '1',
      SentTimestamp: attributes.SentTimestamp ?? '0',
      SenderId: attributes.SenderId ?? 'test',
      ApproximateFirstReceiveTimestamp: attributes.ApproximateFirstReceiveTimestamp ?? '0',
    },
    messageAttributes: {},
    md5OfBody: message.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN: queue.arn,
    awsRegion: 'us-east-1',
  };
}

/** Receive up to `max` jobs from the real queue, without handling them yet. */
export async function receiveJobs(
  queue: FreshQueue,
  max = 10,
  waitSeconds = 1,
  sqs: SQSClient = clients.sqs,
): Promise<SQSRecord[]> {
  const got = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: queue.url,
      MaxNumberOfMessages: max,
      WaitTimeSeconds: waitSeconds,
      MessageSystemAttributeNames: ['All'],
    }),
  );
  return (got.Messages ?? []).map((message) => toRecord(message, queue));
}

/**
 * What the Lambda event source mapping does with one batch: hand it to the handler, then delete every
 * message that is not a batch item failure. Failures stay on the queue and come back after the visibility
 * timeout.
 */
export async function deliver(
  handler: WorkerHandler,
  queue: FreshQueue,
  records: SQSRecord[],
  sqs: SQSClient = clients.sqs,
): Promise<SQSBatchResponse> {
  const response = await handler({ Records: records });
  const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
  for (const record of records) {
    if (!failed.has(record.messageId)) {
      await sqs.send(new DeleteMessageCommand({ QueueUrl: queue.url, ReceiptHandle: record.receiptHandle }));
    }
  }
  return response;
}

async function queueDepth(queue: FreshQueue, sqs: SQSClient): Promise<number> {
  const got = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queue.url,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  const a = got.Attributes ?? {};
  return Number(a.ApproximateNumberOfMessages ?? 0) + Number(a.ApproximateNumberOfMessagesNotVisible ?? 0);
}

export interface DrainReport {
  batches: number;
  failures: number;
}

/** Run the worker over the queue until no message is left, visible or in flight, or the deadline passes. */
export async function drain(
  handler: WorkerHandler,
  queue: FreshQueue,
  options: { batchSize?: number; deadlineMs?: number; sqs?: SQSClient } = {},
): Promise<DrainReport> {
  const sqs = options.sqs ?? clients.sqs;
  const deadline = Date.now() + (options.deadlineMs ?? 45_000);
  const report: DrainReport = { batches: 0, failures: 0 };
  while (Date.now() < deadline) {
    const records = await receiveJobs(queue, options.batchSize ?? 10, 1, sqs);
    if (records.length === 0) {
      if ((await queueDepth(queue, sqs)) === 0) return report;
      continue;
    }
    const response = await deliver(handler, queue, records, sqs);
    report.batches++;
    report.failures += response.batchItemFailures.length;
  }
  throw new Error(`queue ${queue.name} was not drained before the deadline`);
}
