import type { SNSClient } from '@aws-sdk/client-sns';
import { PermanentError, TransientError } from '../errors.ts';
import type { CldistEvent } from '../messages.ts';
import type { Notifier } from './types.ts';

const transientNames = new Set([
  'Throttled',
  'ThrottlingException',
  'ThrottledException',
  'KMSThrottlingException',
  'InternalError',
  'InternalErrorException',
  'ServiceUnavailable',
]);

/** Throttling, 5xx and network failures are worth a retry; a missing topic or a denied call is not. */
export function mapSnsError(error: unknown, topicArn: string): Error {
  if (error instanceof PermanentError || error instanceof TransientError) return error;
  const name = error instanceof Error ? error.name : String(error);
  const status =
    typeof error === 'object' && error !== null && '$metadata' in error
      ? (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode
      : undefined;
  const what = `SNS publish to ${topicArn} failed: ${name}`;
  if (transientNames.has(name) || status === undefined || status >= 500 || status === 429) {
    return new TransientError('notify-unavailable', what, { cause: error });
  }
  return new PermanentError('notify-rejected', what, { cause: error });
}

/**
 * Publishes each event as JSON, with `event`, `source`, `channel` and `board` copied into message attributes so a
 * subscriber's filter policy can pick what it wants without every consumer parsing every body.
 */
export function createSnsNotifier(sns: SNSClient, topicArn: string): Notifier {
  return {
    async publish(event: CldistEvent) {
      try {
        // Loaded on the first publish: a run that publishes nothing never parses the SNS commands.
        const { PublishCommand } = await import('@aws-sdk/client-sns');
        await sns.send(
          new PublishCommand({
            TopicArn: topicArn,
            Message: JSON.stringify(event),
            MessageAttributes: {
              event: { DataType: 'String', StringValue: event.event },
              source: { DataType: 'String', StringValue: event.source },
              channel: { DataType: 'String', StringValue: event.channel },
              board: { DataType: 'String', StringValue: event.board },
            },
          }),
        );
      } catch (error) {
        throw mapSnsError(error, topicArn);
      }
    },
  };
}
