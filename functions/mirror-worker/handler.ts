import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { Logger } from '@aws-lambda-powertools/logger';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { TransientError } from '../../shared/errors.ts';
import type { MirrorLogger } from '../../shared/mirror/deps.ts';
import { retryDelaySeconds, runMirrorJob } from '../../shared/mirror/job.ts';
import type { MirrorRuntime } from '../../shared/mirror/runtime.ts';
import { serviceNames } from '../../shared/telemetry-names.ts';

const logger = new Logger({ serviceName: serviceNames.worker });

/**
 * Powertools' batch processor over the one job policy (`runMirrorJob`): an `ack` is a processed record, a
 * `retry` a batch item failure, hidden first for the configured retry delay so AWS redelivers on the same
 * schedule as one machine, and dead-lettered after `queue.retry.maxReceives`. Built from a loader so tests
 * can hand in their own clients.
 */
export function createWorkerHandler(
  load: () => Promise<MirrorRuntime>,
  log: MirrorLogger = logger,
): (event: SQSEvent, context?: Context) => Promise<SQSBatchResponse> {
  return async (event, context) => {
    const loaded = await load();
    const runtime = { ...loaded, deps: { ...loaded.deps, logger: log } };
    const recordHandler = async (record: SQSRecord): Promise<void> => {
      const receiveCount = Number(record.attributes.ApproximateReceiveCount);
      const result = await runMirrorJob(record.body, runtime, { messageId: record.messageId, receiveCount });
      if (result.disposition === 'ack') return;
      const delay = retryDelaySeconds(receiveCount, runtime.config.queue.retry);
      await runtime.delayRetry?.(record.receiptHandle, delay).catch(() => undefined);
      throw new TransientError(result.facts.code ?? 'retry', result.facts.error ?? 'the job will be retried');
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
