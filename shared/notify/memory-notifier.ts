import { ConfigError } from '../errors.ts';
import type { CldistEvent } from '../messages.ts';
import type { Notifier } from './types.ts';

export interface MemoryNotifier extends Notifier {
  /** Newest first; at most `limit` events. */
  recent(): CldistEvent[];
}

/** Keeps the last events for the status page; bounded so a long-running server cannot grow without end. */
export function createMemoryNotifier(limit = 200): MemoryNotifier {
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new ConfigError(`memory notifier limit must be a positive integer, not ${limit}`);
  }
  const events: CldistEvent[] = [];
  return {
    async publish(event) {
      events.push(structuredClone(event));
      if (events.length > limit) events.splice(0, events.length - limit);
    },
    recent() {
      return events.map((event) => structuredClone(event)).reverse();
    },
  };
}
