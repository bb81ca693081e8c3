import { Duration } from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { ConfigError } from '../../shared/errors.ts';
import { acknowledge } from '../nag.ts';

/** AWS's guidance for queues feeding Lambda: visibility at least six times the function timeout. */
export const visibilityToFunctionTimeoutRatio = 6;

/** SQS's own ceiling on the visibility timeout. */
export const maxVisibilityTimeoutSeconds = 12 * 60 * 60;

export interface WorkerQueueProps {
  /** The timeout of the function that consumes this queue; the visibility timeout is derived from it. */
  consumerTimeout: Duration;
  /**
   * Deliveries before a message is dead-lettered.
   * @default 5
   */
  maxReceiveCount?: number;
  /**
   * How long the DLQ keeps a message for an operator to inspect and redrive.
   * @default Duration.days(14)
   */
  deadLetterRetention?: Duration;
}

/**
 * A job queue with the settings that keep Lambda + SQS honest. The visibility timeout is six times the
 * consumer's timeout so a message is not handed to a second worker while the first (including Lambda's
 * own retries and batching window) may still be working on it. Failed jobs land in a DLQ after
 * `maxReceiveCount` deliveries rather than looping forever; both queues refuse non-TLS access and are
 * encrypted at rest with SQS-managed keys (no KMS grants to manage, no per-request KMS cost).
 */
export class WorkerQueue extends Construct {
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
  readonly maxReceiveCount: number;

  constructor(scope: Construct, id: string, props: WorkerQueueProps) {
    super(scope, id);
    const visibilitySeconds = props.consumerTimeout.toSeconds() * visibilityToFunctionTimeoutRatio;
    if (visibilitySeconds > maxVisibilityTimeoutSeconds) {
      throw new ConfigError(
        `a consumer timeout of ${props.consumerTimeout.toSeconds()} s needs a visibility timeout of ${visibilitySeconds} s, ` +
          `over SQS's ${maxVisibilityTimeoutSeconds} s`,
      );
    }
    this.maxReceiveCount = props.maxReceiveCount ?? 5;
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetter', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: props.deadLetterRetention ?? Duration.days(14),
    });
    this.queue = new sqs.Queue(this, 'Queue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: Duration.seconds(visibilitySeconds),
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: this.maxReceiveCount },
    });
    acknowledge(
      this.deadLetterQueue,
      'AwsSolutions-SQS3',
      'This queue is the dead-letter queue of the job queue; a DLQ of a DLQ would only hide failures.',
    );
  }
}
