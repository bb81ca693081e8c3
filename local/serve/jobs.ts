import { TransientError } from '../../shared/errors.ts';
import { runMirrorJob } from '../../shared/mirror/job.ts';
import type { MirrorRuntime } from '../../shared/mirror/runtime.ts';
import type { QueueStandIn } from '../emulators.ts';
import { abortableStore, type Transfer, type TransferTracker } from '../progress.ts';
import type { DiskGuard } from '../runtime/disk-guard.ts';
import { startWorkerPool, type WorkerPool } from '../worker-pool.ts';
import { visibilityTimeoutSeconds } from './foundation.ts';
import { outlives } from './lifecycle.ts';
import type { QueueSide } from './queue.ts';
import type { ServeContext } from './types.ts';

/** A progress bar per transfer, begun on the first bytes and ended however the job ends. */
function progressOf(tracker: TransferTracker, label: string) {
  let transfer: Transfer | undefined;
  return {
    onProgress(bytes: number, total?: number) {
      transfer ??= tracker.begin(label);
      transfer.advance(bytes, total);
      if (total !== undefined && bytes >= total) {
        transfer.end('downloaded');
        transfer = undefined;
      }
    },
    end(how: 'downloaded' | 'discarded') {
      transfer?.end(how);
      transfer = undefined;
    },
  };
}

function labelOf(body: string): string {
  try {
    const job = JSON.parse(body) as {
      channel?: unknown;
      version?: unknown;
      artifact?: unknown;
      name?: unknown;
    };
    return `${String(job.channel)}/${String(job.version)}/${String(job.artifact ?? job.name)}`;
  } catch {
    return 'job';
  }
}

/**
 * The worker pool of one machine over the one job policy (`runMirrorJob`), taking jobs only while the disk
 * guard allows, with each transfer aborted (and its staged upload dropped) when the pool stops.
 */
export function startJobs(
  serve: ServeContext,
  runtime: MirrorRuntime,
  queue: QueueStandIn,
  diskGuard: DiskGuard,
): WorkerPool {
  const { options, logger } = serve;
  const pool = startWorkerPool({
    sqs: queue.clients.sqs,
    queueUrl: queue.resources.jobsQueueUrl,
    concurrency: options.concurrency,
    logger,
    visibilityTimeoutSeconds,
    retry: runtime.config.queue.retry,
    gate: (signal) => diskGuard.whenRoomy(signal),
    handleJob: async (body, context) => {
      const progress = progressOf(options.tracker, labelOf(body));
      const deps = { ...runtime.deps, store: abortableStore(runtime.deps.store, context.signal) };
      const result = await runMirrorJob(
        body,
        { deps, config: runtime.config },
        {
          signal: context.signal,
          onProgress: progress.onProgress,
          receiveCount: context.receiveCount,
          messageId: context.messageId,
        },
      );
      progress.end(result.disposition === 'ack' && result.error === undefined ? 'downloaded' : 'discarded');
      return result;
    },
  });
  const graceMs = options.shutdownGraceMs ?? 10_000;
  serve.lifecycle.defer(async () => {
    if (await outlives(pool.stop(), graceMs)) logger.warn('shutdown.transfers_still_running', { graceMs });
  });
  return pool;
}

/**
 * Between two looks at the stand-in queue: one look is a loopback call to this process, so a short gap
 * costs little, and it is most of the time `mirror --once` spends after its last job.
 */
const drainCheckEveryMs = 50;

const queueCounts = [
  'ApproximateNumberOfMessages',
  'ApproximateNumberOfMessagesNotVisible',
  'ApproximateNumberOfMessagesDelayed',
] as const;

/**
 * Resolves when, twice in a row, no job is queued, in flight or waiting for a retry, or when `closing()`
 * says so, or at once when the queue never started (nothing was ever sent); rejects while mirroring is
 * paused for lack of disk space, which would otherwise never drain.
 */
export async function drainJobs(options: {
  queue: Pick<QueueSide, 'started' | 'get'>;
  pool: () => Pick<WorkerPool, 'inFlight'> | undefined;
  diskGuard: Pick<DiskGuard, 'paused'>;
  closing: () => boolean;
}): Promise<void> {
  for (let quietChecks = 0; quietChecks < 2 && !options.closing(); ) {
    if (options.diskGuard.paused) {
      throw new TransientError('low-disk', 'mirroring is paused: the data dir is low on free space');
    }
    if (!options.queue.started) return;
    const { clients, resources } = await options.queue.get();
    const { GetQueueAttributesCommand } = await import('@aws-sdk/client-sqs');
    const attributes = await clients.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: resources.jobsQueueUrl, AttributeNames: [...queueCounts] }),
    );
    const queued = Object.values(attributes.Attributes ?? {}).reduce((sum, n) => sum + Number(n), 0);
    quietChecks = queued === 0 && (options.pool()?.inFlight ?? 0) === 0 ? quietChecks + 1 : 0;
    await new Promise((done) => setTimeout(done, drainCheckEveryMs));
  }
}
