import type { CldistEvent } from '../messages.ts';

/**
 * Where mirror events go. The pipeline publishes through this port only, so AWS (SNS), the single-machine
 * runner (console, status page, webhooks) and tests differ only in which notifiers are combined.
 */
export interface Notifier {
  publish(event: CldistEvent): Promise<void>;
}

/** A notifier that delivers in the background and can be waited on at shutdown (and in tests). */
export interface DrainableNotifier extends Notifier {
  /** Resolves when everything published so far has been delivered or given up on. */
  drain(): Promise<void>;
}
