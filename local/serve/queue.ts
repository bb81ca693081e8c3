import { TransientError } from '../../shared/errors.ts';
import { createSqsJobQueue, type JobQueue } from '../../shared/mirror/deps.ts';
import { createSnsNotifier, type Notifier } from '../../shared/notify/index.ts';
import type { QueueStandIn, QueueStandInOptions } from '../emulators.ts';
import type { Lifecycle } from './lifecycle.ts';

/**
 * The queue and topic stand-in of one machine. `serve` starts it with everything else; `mirror --once`
 * starts it on the first job or event, so a run that finds nothing new never loads or starts it (and
 * never runs a worker pool).
 */
export interface QueueSide {
  /** The stand-in, started on the first call (later calls share it); rejects once the host is stopping. */
  get(): Promise<QueueStandIn>;
  /** Whether it is up or starting: a run that never needed it leaves this false. */
  readonly started: boolean;
  /** Runs once the stand-in is up (at once if it already is): the host starts its worker pool here. */
  onStarted(listener: (queue: QueueStandIn) => void): void;
  /** Sends to the stand-in queue, starting it first if need be. */
  jobs: JobQueue;
  /** Publishes to the stand-in topic, starting it first if need be. */
  topic: Notifier;
}

interface Started {
  standIn: QueueStandIn;
  jobs: JobQueue;
  topic: Notifier;
}

/**
 * `eager`: started before this resolves; `on-demand`: on the first `get`, job or event. Either way it is
 * stopped at the place in the lifecycle where it was opened, so what was started after it stops first.
 */
export async function openQueueSide(
  options: QueueStandInOptions,
  lifecycle: Lifecycle,
  start: 'eager' | 'on-demand',
): Promise<QueueSide> {
  let starting: Promise<Started> | undefined;
  let up: QueueStandIn | undefined;
  let closed = false;
  const listeners: Array<(queue: QueueStandIn) => void> = [];
  const open = (): Promise<Started> => {
    if (closed) {
      return Promise.reject(new TransientError('queue-unavailable', 'the runner is stopping'));
    }
    starting ??= import('../emulators.ts')
      .then(({ startQueueStandIn }) => startQueueStandIn(options))
      .then((standIn) => {
        up = standIn;
        const { clients, resources } = standIn;
        for (const listener of listeners.splice(0)) listener(standIn);
        return {
          standIn,
          jobs: createSqsJobQueue(clients.sqs, resources.jobsQueueUrl),
          topic: createSnsNotifier(clients.sns, resources.topicArn),
        };
      })
      .catch((error: unknown) => {
        // A start that failed (no free port, say) is tried again by the next job or event.
        starting = undefined;
        throw new TransientError('queue-unavailable', 'the stand-in queue did not start', { cause: error });
      });
    return starting;
  };
  lifecycle.defer(async () => {
    closed = true;
    const started = await starting?.catch(() => undefined);
    await started?.standIn.close();
  });
  if (start === 'eager') await open();
  return {
    get: async () => (await open()).standIn,
    get started() {
      return starting !== undefined;
    },
    onStarted(listener) {
      if (up === undefined) listeners.push(listener);
      else listener(up);
    },
    jobs: { sendJobs: async (jobs) => (await open()).jobs.sendJobs(jobs) },
    topic: { publish: async (event) => (await open()).topic.publish(event) },
  };
}
