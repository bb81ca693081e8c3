import { SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import type { AwsClients } from '../../../shared/aws-clients.ts';
import type { CldistEvent } from '../../../shared/messages.ts';
import { uniqueName } from '../../support/emulators.ts';

/**
 * An SQS queue subscribed to a topic with raw delivery, as an image import script subscribes to
 * `release.mirrored`. Events are read from the queue, never from the publisher.
 */
export interface TopicSubscriber {
  /** Every event received so far, in arrival order. */
  received: CldistEvent[];
  /** Receives until an event matches, or fails after `timeoutMs`. */
  waitFor(predicate: (event: CldistEvent) => boolean, timeoutMs?: number): Promise<CldistEvent>;
  /** Receives whatever has arrived without waiting. */
  drain(): Promise<CldistEvent[]>;
}

export async function subscribeQueue(clients: AwsClients, topicArn: string): Promise<TopicSubscriber> {
  const created = await clients.sqs.send(new CreateQueueCommand({ QueueName: uniqueName('subscriber') }));
  const url = created.QueueUrl ?? '';
  const attributes = await clients.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }),
  );
  await clients.sns.send(
    new SubscribeCommand({
      TopicArn: topicArn,
      Protocol: 'sqs',
      Endpoint: attributes.Attributes?.QueueArn ?? '',
      Attributes: { RawMessageDelivery: 'true' },
    }),
  );
  const received: CldistEvent[] = [];
  const receive = async (waitSeconds: number): Promise<CldistEvent[]> => {
    const got = await clients.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: waitSeconds }),
    );
    const events = (got.Messages ?? []).map((message) => JSON.parse(message.Body ?? '{}') as CldistEvent);
    received.push(...events);
    return events;
  };
  return {
    received,
    async waitFor(predicate, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = received.find(predicate);
        if (found !== undefined) return found;
        if (Date.now() > deadline) {
          throw new Error(
            `no matching event within ${timeoutMs} ms; received: ${JSON.stringify(received.map((e) => e.event))}`,
          );
        }
        await receive(1);
      }
    },
    async drain() {
      const all: CldistEvent[] = [];
      for (let batch = await receive(0); batch.length > 0; batch = await receive(0)) all.push(...batch);
      return all;
    },
  };
}
