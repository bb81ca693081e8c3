import { createLogger, type LogRecord } from '../../local/runtime/log.ts';
import { TransientError } from '../../shared/errors.ts';
import type { Ledger } from '../../shared/ledger/ledger.ts';
import type { MirrorDeps } from '../../shared/mirror/deps.ts';

/**
 * Mirror dependencies whose ledger is down: beginning an artifact's or a payload's attempt, the first thing
 * a job does, fails transiently, so a job that reaches the ledger is retried and one refused before it is
 * not. The other ports are inert. Every log record is pushed to `records`.
 */
export function depsWithLedgerDown(records: LogRecord[]): MirrorDeps {
  const down = () => Promise.reject(new TransientError('ledger-unavailable', 'the ledger did not answer'));
  return {
    ledger: { beginAttempt: down, beginPayload: down } as unknown as Ledger,
    store: {} as MirrorDeps['store'],
    notifier: { publish: () => Promise.resolve() },
    jobs: { sendJobs: () => Promise.resolve() },
    signatures: {} as MirrorDeps['signatures'],
    clock: () => new Date('2026-12-03T00:00:00Z'),
    logger: createLogger({ format: 'json', write: () => {}, onRecord: (record) => records.push(record) }),
  };
}
