import { randomUUID } from 'node:crypto';
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
} from '@aws-sdk/client-sqs';
import type { ScheduledEvent, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import type { Deployment } from './deployment.ts';
import { FunctionError } from './lambda-container.ts';
import { constructName, resolveString, resourcesOfType } from './template.ts';

/**
 * The EventBridge rule that targets `functionId`, and the event it delivers on schedule (the shape of
 * EventBridge's "Scheduled Event").
 */
export function scheduledEvent(deployment: Deployment, functionId: string): ScheduledEvent {
  const fn = deployment.function(functionId);
  const { scope } = deployment.standIns;
  const functionArn = deployment.attribute(fn.logicalId, 'Arn');
  const rules = resourcesOfType(deployment.template, 'AWS::Events::Rule').filter(([logicalId, rule]) => {
    const targets = (rule.Properties?.Targets as { Arn: unknown }[] | undefined) ?? [];
    return (
      rule.Properties?.ScheduleExpression !== undefined &&
      targets.some(
        (target, index) => resolveString(target.Arn, scope, `${logicalId}.Targets[${index}]`) === functionArn,
      )
    );
  });
  const [rule] = rules;
  if (rule === undefined || rules.length > 1) {
    throw new Error(`expected one scheduled rule targeting ${fn.name}, found ${rules.length}`);
  }
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: scope.accountId,
    time: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    region: scope.region,
    resources: [`arn:aws:events:${scope.region}:${scope.accountId}:rule/${rule[0]}`],
    detail: {},
  };
}

/** One invocation of the worker by the event source mapping, and what became of its records. */
export interface SqsInvocation {
  records: SQSRecord[];
  /** Message IDs the function reported as failed (or all of them, when the function threw). */
  failed: string[];
  /** The function threw: Lambda treats the whole batch as failed. */
  error?: FunctionError;
}

export interface SqsEventSource {
  functionName: string;
  queueUrl: string;
  queueArn: string;
  batchSize: number;
  reportsItemFailures: boolean;
  /** Receives one batch from the queue (waiting up to `waitSeconds`), invokes, settles it as Lambda does. */
  pollOnce(waitSeconds?: number): Promise<SqsInvocation | undefined>;
  /**
   * Ends the visibility timeout of the failed messages now, as if it had run out, so they are delivered
   * again (and dead-lettered past the redrive policy's maxReceiveCount). The template's timeout is hours
   * long; the test drives it instead of waiting.
   */
  expireVisibility(invocation: SqsInvocation): Promise<void>;
  /** Messages visible plus in flight. */
  depth(): Promise<number>;
}

function toRecord(message: Message, queueArn: string, region: string): SQSRecord {
  const attributes = message.Attributes ?? {};
  return {
    messageId: message.MessageId ?? '',
    receiptHandle: message.ReceiptHandle ?? '',
    body: message.Body ?? '',
    attributes: {
      ApproximateReceiveCount: attributes.ApproximateReceiveCount ?? '1',
      SentTimestamp: attributes.SentTimestamp ?? '0',
      SenderId: attributes.SenderId ?? '',
      ApproximateFirstReceiveTimestamp: attributes.ApproximateFirstReceiveTimestamp ?? '0',
    },
    messageAttributes: Object.fromEntries(
      Object.entries(message.MessageAttributes ?? {}).map(([name, value]) => [
        name,
        {
          dataType: value.DataType ?? 'String',
          ...(value.StringValue === undefined ? {} : { stringValue: value.StringValue }),
          stringListValues: [],
          binaryListValues: [],
        },
      ]),
    ),
    md5OfBody: message.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: region,
  };
}

/**
 * The Lambda event source mapping the template declares for `functionId`: its queue, batch size and
 * whether the function reports batch item failures. Records are real messages received from the queue.
 */
export function sqsEventSource(deployment: Deployment, functionId: string): SqsEventSource {
  const fn = deployment.function(functionId);
  const { scope } = deployment.standIns;
  const sqs = deployment.clients.sqs;
  const mappings = resourcesOfType(deployment.template, 'AWS::Lambda::EventSourceMapping').filter(
    ([logicalId, mapping]) =>
      resolveString(mapping.Properties?.FunctionName, scope, `${logicalId}.FunctionName`) ===
      deployment.ref(fn.logicalId),
  );
  const [mapping] = mappings;
  if (mapping === undefined || mappings.length > 1) {
    throw new Error(`expected one event source mapping for ${fn.name}, found ${mappings.length}`);
  }
  const [mappingId, resource] = mapping;
  const props = resource.Properties ?? {};
  const queueArn = resolveString(props.EventSourceArn, scope, `${mappingId}.EventSourceArn`);
  const queue = [...deployment.standIns.physical.values()].find((p) => p.attributes.Arn === queueArn);
  if (queue?.attributes.QueueUrl === undefined) {
    throw new Error(`${constructName(mappingId, resource)} reads ${queueArn}, which is not a stood-up queue`);
  }
  const queueUrl = queue.attributes.QueueUrl;
  const batchSize = Number(props.BatchSize ?? 10);
  const reportsItemFailures = ((props.FunctionResponseTypes as string[] | undefined) ?? []).includes(
    'ReportBatchItemFailures',
  );

  return {
    functionName: fn.name,
    queueUrl,
    queueArn,
    batchSize,
    reportsItemFailures,
    async pollOnce(waitSeconds = 1) {
      const got = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: Math.min(batchSize, 10),
          WaitTimeSeconds: waitSeconds,
          MessageSystemAttributeNames: ['All'],
          MessageAttributeNames: ['All'],
        }),
      );
      const messages = got.Messages ?? [];
      if (messages.length === 0) return undefined;
      const records = messages.map((message) => toRecord(message, queueArn, scope.region));
      const event: SQSEvent = { Records: records };
      let failed: string[];
      let error: FunctionError | undefined;
      try {
        const response = await deployment.invoke<SQSBatchResponse | null>(fn.logicalId, event);
        failed = reportsItemFailures
          ? (response?.batchItemFailures ?? []).map((failure) => failure.itemIdentifier)
          : [];
      } catch (thrown) {
        if (!(thrown instanceof FunctionError)) throw thrown;
        error = thrown;
        failed = records.map((record) => record.messageId);
      }
      const kept = new Set(failed);
      for (const record of records) {
        if (!kept.has(record.messageId)) {
          await sqs.send(
            new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: record.receiptHandle }),
          );
        }
      }
      return { records, failed, ...(error === undefined ? {} : { error }) };
    },
    async expireVisibility(invocation) {
      const failed = new Set(invocation.failed);
      for (const record of invocation.records.filter((r) => failed.has(r.messageId))) {
        await sqs.send(
          new ChangeMessageVisibilityCommand({
            QueueUrl: queueUrl,
            ReceiptHandle: record.receiptHandle,
            VisibilityTimeout: 0,
          }),
        );
      }
    },
    async depth() {
      const got = await sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: queueUrl,
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
        }),
      );
      const a = got.Attributes ?? {};
      return (
        Number(a.ApproximateNumberOfMessages ?? 0) + Number(a.ApproximateNumberOfMessagesNotVisible ?? 0)
      );
    },
  };
}

/**
 * Runs the event source until the queue is empty, expiring the visibility of failed messages at once so
 * they are retried (and dead-lettered by the queue's redrive policy). Bounded by `maxInvocations`.
 */
export async function drainQueue(
  source: SqsEventSource,
  maxInvocations = 50,
): Promise<{ invocations: SqsInvocation[] }> {
  const invocations: SqsInvocation[] = [];
  // Empty receives are bounded too: fauxqs may report a message in flight for a moment after a delete.
  for (let emptyPolls = 0; invocations.length < maxInvocations && emptyPolls < 10; ) {
    const invocation = await source.pollOnce(emptyPolls === 0 ? 0 : 1);
    if (invocation === undefined) {
      if ((await source.depth()) === 0) return { invocations };
      emptyPolls++;
      continue;
    }
    emptyPolls = 0;
    invocations.push(invocation);
    await source.expireVisibility(invocation);
  }
  throw new Error(
    `the ${source.functionName} queue was not empty after ${invocations.length} invocations (depth ${await source.depth()})`,
  );
}
