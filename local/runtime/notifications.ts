import type { SNSClient } from '@aws-sdk/client-sns';
import { describeError } from '../../shared/errors.ts';
import type { CldistEvent } from '../../shared/messages.ts';
import type { EventSink } from '../../shared/mirror/deps.ts';
import type { Logger } from './log.ts';

export interface LocalNotifications {
  notifier: EventSink;
  /** Oldest first, at most `keep`, for the status page. */
  recent(): CldistEvent[];
  /** Wait for deliveries still under way (webhook retries). */
  flush(): Promise<void>;
}

export interface LocalNotifierOptions {
  logger: Logger;
  webhooks: string[];
  sns?: SNSClient;
  topicArn?: string;
  keep?: number;
}

/**
 * Where events go on one machine: the console (one line each), a ring the status page reads, the
 * configured webhooks, and the fauxqs topic, as SNS does on AWS. One failing sink never stops the others.
 */
export function createLocalNotifier(options: LocalNotifierOptions): LocalNotifications {
  const keep = options.keep ?? 100;
  const events: CldistEvent[] = [];
  const pending = new Set<Promise<unknown>>();
  const notifier: EventSink = {
    async publish(event) {
      events.push(event);
      if (events.length > keep) events.splice(0, events.length - keep);
      const { event: name, ...rest } = event;
      options.logger.info(`notify.${name}`, rest);
    },
  };
  return {
    notifier,
    recent: () => [...events],
    async flush() {
      await Promise.allSettled([...pending]).catch((error: unknown) =>
        options.logger.warn('notification.flush_failed', { cause: describeError(error) }),
      );
    },
  };
}
