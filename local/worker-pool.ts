import type { SQSClient } from '@aws-sdk/client-sqs';
import type { CldistConfig } from '../shared/config.ts';
import { describeError } from '../shared/errors.ts';
import { dispositionOf, type JobDisposition, retryDelaySeconds } from '../shared/mirror/job.ts';
import type { Logger } from './runtime/log.ts';

/** The SQS commands, loaded when a pool first uses them: the pool starts with the first job, not at start. */
const sqsCommands = () => import('@aws-sdk/client-sqs');

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

/** What became of a job: its disposition and, if it failed, why. `MirrorJobResult` is one. */
export interface JobVerdict {
  disposition: JobDisposition;
  error?: unknown;
}

export interface WorkerPoolOptions {
  sqs: SQSClient;
  queueUrl: string;
  concurrency: number;
  /**
   * The job policy: `runMirrorJob` for the mirror. Resolving with nothing means `ack`; a thrown error is
   * judged by the policy's own `dispositionOf`.
   */
  handleJob: (body: string, context: JobContext) => Promise<JobVerdict> | Promise<void>;
  logger: Logger;
  /** Long-poll wait per receive; a stop aborts the poll, so this costs nothing at shutdown. */
  waitTimeSeconds?: number;
  /** Visibility while a job runs; extended every half period for as long as the handler works. */
  visibilityTimeoutSeconds?: number;
  /** `queue.retry` of the config: when a retried job comes back (its dead-lettering is the queue's). */
  retry?: Pick<CldistConfig['queue']['retry'], 'firstDelaySeconds' | 'maxDelaySeconds'>;
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

async function hide(options: WorkerPoolOptions, receiptHandle: string, seconds: number): Promise<void> {
  const { ChangeMessageVisibilityCommand } = await sqsCommands();
  await options.sqs.send(
    new ChangeMessageVisibilityCommand({
      QueueUrl: options.queueUrl,
      ReceiptHandle: receiptHandle,
      VisibilityTimeout: seconds,
    }),
  );
}

/** Maps a verdict onto the queue: `ack` deletes the message, `retry` hides it for the retry delay. */
async function settle(
  options: WorkerPoolOptions,
  verdict: JobVerdict,
  receiptHandle: string,
  context: JobContext,
  stopping: boolean,
): Promise<JobOutcome> {
  const { disposition, error } = verdict;
  const { messageId, receiveCount } = context;
  if (error !== undefined && (stopping || (error instanceof Error && error.name === 'AbortError'))) {
    return { kind: 'aborted', messageId };
  }
  if (disposition === 'ack') {
    const { DeleteMessageCommand } = await sqsCommands();
    await options.sqs.send(
      new DeleteMessageCommand({ QueueUrl: options.queueUrl, ReceiptHandle: receiptHandle }),
    );
    return error === undefined ? { kind: 'done', messageId, ms: 0 } : { kind: 'permanent', messageId, error };
  }
  const retry = { maxReceives: 0, firstDelaySeconds: 5, maxDelaySeconds: 300, ...options.retry };
  const retryInSeconds = retryDelaySeconds(receiveCount, retry);
  await hide(options, receiptHandle, retryInSeconds).catch(() => {});
  return { kind: 'transient', messageId, error, receiveCount, retryInSeconds };
}

/** One long poll for at most one message, with its receive count. */
async function receiveOne(
  options: WorkerPoolOptions,
  waitTimeSeconds: number,
  visibility: number,
  signal: AbortSignal,
) {
  const { ReceiveMessageCommand } = await sqsCommands();
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
  return received.Messages?.[0];
}

/**
 * Slot-per-concurrency long-polling loop over SQS. An `ack` deletes the message; a `retry` hides it for
 * the configured retry delay, and the queue's redrive policy dead-letters it after the last receive, as on
 * AWS. The pool logs no outcome: the job policy does.
 */
export function startWorkerPool(options: WorkerPoolOptions): WorkerPool {
  const controller = new AbortController();
  const { signal } = controller;
  const waitTimeSeconds = options.waitTimeSeconds ?? 20;
  const visibility = options.visibilityTimeoutSeconds ?? 60;
  const log = options.logger;
  let inFlight = 0;

  const changeVisibility = (receiptHandle: string, seconds: number) => hide(options, receiptHandle, seconds);

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
    let verdict: JobVerdict;
    try {
      verdict = (await options.handleJob(body, context)) ?? { disposition: 'ack' };
    } catch (error) {
      verdict = { disposition: dispositionOf(error), error };
    } finally {
      clearInterval(heartbeat);
    }
    const outcome = await settle(options, verdict, receiptHandle, context, signal.aborted);
    options.onOutcome?.(outcome.kind === 'done' ? { ...outcome, ms: Date.now() - started } : outcome);
  };

  const slot = async (): Promise<void> => {
    while (!signal.aborted) {
      try {
        await options.gate?.(signal);
        if (signal.aborted) return;
        const message = await receiveOne(options, waitTimeSeconds, visibility, signal);
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
