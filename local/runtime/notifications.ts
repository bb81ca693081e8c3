import type { CldistEvent } from '../../shared/messages.ts';
import {
  combineNotifiers,
  createConsoleNotifier,
  createMemoryNotifier,
  createWebhookNotifier,
  type Notifier,
  redactUrl,
} from '../../shared/notify/index.ts';
import type { Logger } from './log.ts';

export interface LocalNotifications {
  notifier: Notifier;
  /** Newest first, for the status page. */
  recent(): CldistEvent[];
  /** Wait, at most `graceMs`, for webhook deliveries still being retried. */
  flush(graceMs: number): Promise<void>;
}

export interface LocalNotifierOptions {
  logger: Logger;
  /** `json`: the console gets one JSON line per event; `pretty`: a short line through the logger. */
  format: 'json' | 'pretty';
  writeLine: (line: string) => void;
  webhooks: string[];
  /** The stand-in SNS topic. */
  topic: Notifier;
  keep?: number;
}

/**
 * Where events go on one machine: the console, the status page's memory, every configured webhook
 * (retried with backoff in the background) and the stand-in SNS topic, so the wiring matches AWS.
 */
export function createLocalNotifier(options: LocalNotifierOptions): LocalNotifications {
  const memory = createMemoryNotifier(options.keep ?? 200);
  const console: Notifier =
    options.format === 'json'
      ? createConsoleNotifier(options.writeLine)
      : {
          async publish(event) {
            const { event: name, ...rest } = event;
            options.logger.info(`notify.${name}`, rest);
          },
        };
  const webhooks = createWebhookNotifier(options.webhooks, {
    onGiveUp: (failure) =>
      options.logger.warn('notify.webhook_given_up', {
        url: redactUrl(failure.url),
        event: failure.event.event,
        attempts: failure.attempts,
        reason: failure.reason,
        status: failure.status,
      }),
  });
  const combined = combineNotifiers(memory, console, webhooks, options.topic);
  return {
    notifier: combined,
    recent: () => memory.recent(),
    async flush(graceMs) {
      let timer: NodeJS.Timeout | undefined;
      const late = await Promise.race([
        combined.drain().then(() => false),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), graceMs);
        }),
      ]);
      clearTimeout(timer);
      if (late) options.logger.warn('notify.webhooks_abandoned_at_shutdown', { graceMs });
    },
  };
}

/**
 * A release is finalized (release.json and `current/` written) before `release.mirrored` goes out, so the
 * host's `release.finalized` and `mirror.current_moved` lines are written as that event is handed to the
 * notifiers, in the order the steps happened, never after the event.
 */
export function finalizedBeforeMirrored(notifier: Notifier, logger: Logger): Notifier {
  return {
    async publish(event) {
      if (event.event === 'release.mirrored') {
        const release = { channel: event.channel, board: event.board, version: event.version };
        logger.info('release.finalized', release);
        if (event.detail.currentAdvanced === true) logger.info('mirror.current_moved', release);
      }
      await notifier.publish(event);
    },
  };
}
