import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { Logger } from '@aws-lambda-powertools/logger';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { describeError, PermanentError } from '../../shared/errors.ts';
import { parseMirrorJob } from '../../shared/messages.ts';
import type { MirrorLogger } from '../../shared/mirror/deps.ts';
import type { MirrorRuntime } from '../../shared/mirror/wiring.ts';
import { mirrorArtifact } from '../../shared/mirror/worker.ts';
import { serviceNames } from '../../shared/telemetry-names.ts';

const logger = new Logger({ serviceName: serviceNames.worker });

/**
 * The error mapping of the queue: a PermanentError (bad signature, malformed job) is acknowledged and
 * reported, never retried; anything else is a batch item failure, redelivered with backoff and
 * dead-lettered after the last try. Built from a loader so tests and the local runner can hand in their
 * own clients.
 */
export function createWorkerHandler(
  load: () => Promise<MirrorRuntime>,
  log: MirrorLogger = logger,
): (event: SQSEvent, context?: Context) => Promise<SQSBatchResponse> {
  return async (event, context) => {
    const { deps, config } = await load();
    const recordHandler = async (record: SQSRecord): Promise<void> => {
      try {
        const job = parseMirrorJob(record.body);
        const result = await mirrorArtifact(job, deps, config);
        log.info('job done', {
          messageId: record.messageId,
          artifact: `${job.channel}/${job.board}/${job.version}/${job.artifact}`,
          outcome: result.outcome,
          finalized: result.finalize.finalized,
        });
      } catch (error) {
        if (error instanceof PermanentError) {
          log.error('job refused; not retried', {
            messageId: record.messageId,
            code: error.code,
            error: describeError(error),
          });
          return;
        }
        log.warn('job failed; will be retried', {
          messageId: record.messageId,
          receiveCount: record.attributes.ApproximateReceiveCount,
          error: describeError(error),
        });
        throw error;
      }
    };
    const processor = new BatchProcessor(EventType.SQS);
    return processPartialResponse(event, recordHandler, processor, {
      ...(context === undefined ? {} : { context }),
      throwOnFullBatchFailure: false,
    });
  };
}

let runtime: Promise<MirrorRuntime> | undefined;

/** Clients, config and keyring are built once per container, on the first event. */
export const handler = createWorkerHandler(() => {
  runtime ??= import('../../shared/mirror/wiring.ts').then((wiring) =>
    wiring.loadMirrorRuntime(process.env, { logger, role: 'worker' }),
  );
  return runtime;
});
