import { TransientError } from '../errors.ts';
import type { CldistEvent } from '../messages.ts';
import type { DrainableNotifier, Notifier } from './types.ts';

function isDrainable(notifier: Notifier): notifier is DrainableNotifier {
  return 'drain' in notifier && typeof notifier.drain === 'function';
}

/**
 * Every notifier gets every event even when one of them fails. If any failed, the publish fails with a
 * TransientError when any failure was transient (so the caller retries), else with the first failure.
 */
export function combineNotifiers(...notifiers: Notifier[]): DrainableNotifier {
  return {
    async publish(event: CldistEvent) {
      const results = await Promise.allSettled(notifiers.map((notifier) => notifier.publish(event)));
      const failures = results.flatMap((result) => (result.status === 'rejected' ? [result.reason] : []));
      if (failures.length === 0) return;
      throw failures.find((failure) => failure instanceof TransientError) ?? failures[0];
    },
    async drain() {
      await Promise.all(notifiers.filter(isDrainable).map((notifier) => notifier.drain()));
    },
  };
}
