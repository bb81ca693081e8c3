import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { describeError, PermanentError } from '../shared/errors.ts';
import type { Logger } from './runtime/log.ts';

export interface JobContext {
  /** Aborted when the pool stops: the handler must abort its transfer and leave nothing visible. */
  signal: AbortSignal;
  messageId: string;
  /** How many times SQS has handed out this message, this time included. */
  receiveCount: number;
}

export type JobOutcome =
  | { kind: 'done'; messageId: string; ms: number }
  | { kind: 'permanent'; messageId: string; error: unknown }
  | { kind: 'transient'; messageId: string; error: unknown; receiveCount: number; retryInSeconds: number }
  | { kind: 'aborted'; messageId: string };

export interface WorkerPoolOptions {
  sqs: SQSClient;
  queueUrl: string;
  concurrency: number;
  handleJob: (body: string, context: JobContext) => Promise<void>;
  logger: Logger;
  /** Long-poll wait per receive; a stop aborts the poll, so this costs nothing at shutdown. */
  waitTimeSeconds?: number;
  /** Visibility while a job runs; extended every half period for as long as the handler works. */
  visibilityTimeoutSeconds?: number;
  /** First retry delay after a transient failure; doubles per receive up to `maxBackoffSeconds`. */
  baseBackoffSeconds?: number;
  maxBackoffSeconds?: number;
  onOutcome?: (outcome: JobOutcome) => void;
  /** Awaited before every receive: resolves when the pool may take a job (e.g. once the disk has room). */
  gate?: (signal: AbortSignal) => Promise<void>;
}

export interface WorkerPool {
  /** Jobs being handled right now. */
  readonly inFlight: number;
  /** Stop receiving, abort running jobs, and wait for every slot to finish. */
  stop(): Promise<void>;
}

function isAbort(error: unknown, signal: AbortSignal): boolean {
  return signal.aborted || (error instanceof Error && error.name === 'AbortError');
}

/**
 * Slot-per-concurrency long-polling loop over SQS. Success and permanent errors delete the message (a
 * retry cannot fix a bad signature); anything else is left to come back after a backoff, and the queue's
 * redrive policy dead-letters it after the last receive, exactly as the Lambda event source would.
 */
export function startWorkerPool(options: WorkerPoolOptions): WorkerPool {
  const controller = new AbortController();
  const { signal } = controller;
  const waitTimeSeconds = options.waitTimeSeconds ?? 20;
  const visibility = options.visibilityTimeoutSeconds ?? 60;
  const baseBackoff = options.baseBackoffSeconds ?? 5;
  const maxBackoff = options.maxBackoffSeconds ?? 300;
  const log = options.logger;
  let inFlight = 0;

  const changeVisibility = async (receiptHandle: string, seconds: number): Promise<void> => {
    await options.sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: options.queueUrl,
        ReceiptHandle: receiptHandle,
        VisibilityTimeout: seconds,
      }),
    );
  };

  const handleOne = async (body: string, receiptHandle: string, context: JobContext): Promise<void> => {
    const started = Date.now();
    const heartbeat = setInterval(
      () => {
        changeVisibility(receiptHandle, visibility).catch((error: unknown) =>
          log.warn('worker.heartbeat_failed', { messageId: context.messageId, cause: describeError(error) }),
        );
      },
      Math.max(1, visibility / 2) * 1000,
    );
    try {
      await options.handleJob(body, context);
      clearInterval(heartbeat);
      await options.sqs.send(
        new DeleteMessageCommand({ QueueUrl: options.queueUrl, ReceiptHandle: receiptHandle }),
      );
      options.onOutcome?.({ kind: 'done', messageId: context.messageId, ms: Date.now() - started });
    } catch (error) {
      clearInterval(heartbeat);
      if (isAbort(error, signal)) {
        options.onOutcome?.({ kind: 'aborted', messageId: context.messageId });
        return;
      }
      if (error instanceof PermanentError) {
        log.error('worker.job_rejected', {
          messageId: context.messageId,
          code: error.code,
          cause: describeError(error),
        });
        await options.sqs.send(
          new DeleteMessageCommand({ QueueUrl: options.queueUrl, ReceiptHandle: receiptHandle }),
        );
        options.onOutcome?.({ kind: 'permanent', messageId: context.messageId, error });
        return;
      }
      const retryInSeconds = Math.min(maxBackoff, baseBackoff * 2 ** Math.max(0, context.receiveCount - 1));
      log.warn('worker.job_retry', {
        messageId: context.messageId,
        receiveCount: context.receiveCount,
        retryInSeconds,
        cause: describeError(error),
      });
      await changeVisibility(receiptHandle, retryInSeconds).catch(() => {});
      options.onOutcome?.({
        kind: 'transient',
        messageId: context.messageId,
        error,
        receiveCount: context.receiveCount,
        retryInSeconds,
      });
    }
  };

  const slot = async (): Promise<void> => {
    while (!signal.aborted) {
      try {
        await options.gate?.(signal);
        if (signal.aborted) return;
        const received = await options.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: options.queueUrl,
            MaxNumberOfMessages: 1,
            WaitTimeSeconds: waitTimeSeconds,
            VisibilityTimeout: visibility,
            MessageSystemAttributeNames: ['ApproximateReceiveCount'],
          }),
          { abortSignal: signal },
        );
        const [message] = received.Messages ?? [];
        if (message === undefined) continue;
        inFlight++;
        try {
          await handleOne(message.Body ?? '', message.ReceiptHandle ?? '', {
            signal,
            messageId: message.MessageId ?? '',
            receiveCount: Number(message.Attributes?.ApproximateReceiveCount ?? '1'),
          });
        } finally {
          inFlight--;
        }
      } catch (error) {
        if (signal.aborted) return;
        log.warn('worker.receive_failed', { cause: describeError(error) });
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  };

  const slots = Array.from({ length: options.concurrency }, () => slot());
  const done = Promise.all(slots).then(() => {});

  return {
    get inFlight() {
      return inFlight;
    },
    async stop() {
      controller.abort();
      await done;
    },
  };
}
