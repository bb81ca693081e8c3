import type { CldistEvent } from '../messages.ts';
import type { Notifier } from './types.ts';

/**
 * One JSON line per event, so the single-machine runner's log can be grepped or shipped like Lambda logs.
 * The time is the event's own, not the time of writing.
 */
export function createConsoleNotifier(
  write: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
): Notifier {
  return {
    async publish(event: CldistEvent) {
      write(
        JSON.stringify({
          level: 'INFO',
          message: `cldist event ${event.event}`,
          timestamp: event.at,
          ...event,
        }),
      );
    },
  };
}
