import { GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../local/runtime/log.ts';
import { type JobOutcome, startWorkerPool, type WorkerPool } from '../../local/worker-pool.ts';
import type { AwsClients } from '../../shared/aws-clients.ts';
import { PermanentError, TransientError } from '../../shared/errors.ts';
import { emulatorClients, type FreshQueue, freshQueue } from '../support/emulators.ts';

async function waitFor<T>(
  probe: () => T | undefined | Promise<T | undefined>,
  what: string,
  ms = 15_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function queueDepth(clients: AwsClients, url: string): Promise<number> {
  const out = await clients.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return (
    Number(out.Attributes?.ApproximateNumberOfMessages ?? 0) +
    Number(out.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0)
  );
}

async function queueWithDlq(
  clients: AwsClients,
  maxReceiveCount: number,
): Promise<{ jobs: FreshQueue; dlq: FreshQueue }> {
  const dlq = await freshQueue(clients, 'pool-dlq');
  const jobs = await freshQueue(clients, 'pool-jobs', {
    RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.arn, maxReceiveCount }),
  });
  return { jobs, dlq };
}

describe('worker pool over SQS (fauxqs)', () => {
  const clients = emulatorClients();
  let pool: WorkerPool | undefined;

  afterEach(async () => {
    await pool?.stop();
    pool = undefined;
  });

  it('deletes a message once its job succeeds', async () => {
    const { jobs } = await queueWithDlq(clients, 3);
    const seen: string[] = [];
    for (const body of ['a', 'b', 'c']) {
      await clients.sqs.send(new SendMessageCommand({ QueueUrl: jobs.url, MessageBody: body }));
    }
    pool = startWorkerPool({
      sqs: clients.sqs,
      queueUrl: jobs.url,
      concurrency: 2,
      waitTimeSeconds: 1,
      logger: silentLogger,
      handleJob: async (body) => {
        seen.push(body);
      },
    });
    await waitFor(
      async () => seen.length === 3 && (await queueDepth(clients, jobs.url)) === 0,
      'all jobs done',
    );
    expect(seen.sort()).toEqual(['a', 'b', 'c']);
  });

  it('acknowledges a permanent error without a retry', async () => {
    const { jobs, dlq } = await queueWithDlq(clients, 3);
    await clients.sqs.send(new SendMessageCommand({ QueueUrl: jobs.url, MessageBody: 'bad' }));
    const outcomes: JobOutcome[] = [];
    let calls = 0;
    pool = startWorkerPool({
      sqs: clients.sqs,
      queueUrl: jobs.url,
      concurrency: 1,
      waitTimeSeconds: 1,
      logger: silentLogger,
      onOutcome: (o) => outcomes.push(o),
      handleJob: async () => {
        calls++;
        throw new PermanentError('bad-signature:tampered', 'signature does not match');
      },
    });
    await waitFor(() => outcomes.find((o) => o.kind === 'permanent'), 'permanent outcome');
    expect(await queueDepth(clients, jobs.url)).toBe(0);
    expect(await queueDepth(clients, dlq.url)).toBe(0);
    expect(calls).toBe(1);
  });

  it('retries a transient failure and dead-letters it after the last receive', async () => {
    const { jobs, dlq } = await queueWithDlq(clients, 2);
    await clients.sqs.send(new SendMessageCommand({ QueueUrl: jobs.url, MessageBody: 'flaky' }));
    const receiveCounts: number[] = [];
    pool = startWorkerPool({
      sqs: clients.sqs,
      queueUrl: jobs.url,
      concurrency: 1,
      waitTimeSeconds: 1,
      retry: { firstDelaySeconds: 0, maxDelaySeconds: 0 },
      logger: silentLogger,
      handleJob: async (_body, context) => {
        receiveCounts.push(context.receiveCount);
        throw new TransientError('upstream-5xx', 'origin answered 503');
      },
    });
    const dead = await waitFor(async () => {
      const out = await clients.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: dlq.url, WaitTimeSeconds: 0 }),
      );
      return out.Messages?.[0];
    }, 'the job in the dead-letter queue');
    expect(dead.Body).toBe('flaky');
    expect(receiveCounts).toEqual([1, 2]);
    expect(await queueDepth(clients, jobs.url)).toBe(0);
  });

  it('never runs more jobs at once than its concurrency', async () => {
    const { jobs } = await queueWithDlq(clients, 3);
    for (let i = 0; i < 5; i++) {
      await clients.sqs.send(new SendMessageCommand({ QueueUrl: jobs.url, MessageBody: String(i) }));
    }
    let running = 0;
    let peak = 0;
    let done = 0;
    const gates: Array<() => void> = [];
    pool = startWorkerPool({
      sqs: clients.sqs,
      queueUrl: jobs.url,
      concurrency: 2,
      waitTimeSeconds: 1,
      logger: silentLogger,
      handleJob: async () => {
        running++;
        peak = Math.max(peak, running);
        await new Promise<void>((resolve) => gates.push(resolve));
        running--;
        done++;
      },
    });
    for (let remaining = 5; remaining > 0; remaining--) {
      await waitFor(
        () => running === Math.min(2, remaining) || undefined,
        `${Math.min(2, remaining)} running jobs`,
      );
      expect(pool.inFlight).toBe(Math.min(2, remaining));
      gates.shift()?.();
      await waitFor(() => done === 6 - remaining || undefined, 'the released job to finish');
    }
    expect(peak).toBe(2);
  });

  it('aborts running jobs on stop and leaves their messages in the queue', async () => {
    const { jobs } = await queueWithDlq(clients, 3);
    await clients.sqs.send(new SendMessageCommand({ QueueUrl: jobs.url, MessageBody: 'long' }));
    const outcomes: JobOutcome[] = [];
    let started = false;
    const running = startWorkerPool({
      sqs: clients.sqs,
      queueUrl: jobs.url,
      concurrency: 2,
      waitTimeSeconds: 20,
      logger: silentLogger,
      onOutcome: (o) => outcomes.push(o),
      handleJob: (_body, { signal }) =>
        new Promise<void>((_resolve, reject) => {
          started = true;
          signal.addEventListener('abort', () =>
            reject(Object.assign(new Error('aborted'), { name: 'AbortError' })),
          );
        }),
    });
    await waitFor(() => started || undefined, 'the job to start');
    await running.stop();
    expect(outcomes.map((o) => o.kind)).toEqual(['aborted']);
    expect(await queueDepth(clients, jobs.url)).toBe(1);
  });
});
