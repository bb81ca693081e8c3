import { setTimeout as delay } from 'node:timers/promises';
import { describeError, TransientError } from '../errors.ts';

/** The one log line it writes per retry; any of the cores' loggers fits. */
export interface RetryLogger {
  warn(message: string, ...attributes: Record<string, unknown>[]): void;
}

/** About 6 s in all: longer than the ledger blips seen in chaos runs, short against a job's visibility. */
const backoffMs = [100, 200, 400, 800, 1600, 3200];

/**
 * Once a notification is published, the ledger write that says so must land, or a retried job publishes it
 * again. So that write is retried in place through a short ledger outage instead of failing the job.
 */
export async function recordAfterPublish<T>(
  what: string,
  context: Record<string, unknown>,
  deps: { logger: RetryLogger },
  write: () => Promise<T>,
): Promise<T> {
  for (const wait of backoffMs) {
    try {
      return await write();
    } catch (error) {
      if (!(error instanceof TransientError)) throw error;
      deps.logger.warn('ledger.record_retry', { what, ...context, error: describeError(error) });
      await delay(wait);
    }
  }
  return write();
}
