import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../local/runtime/log.ts';
import { createLifecycle, type Lifecycle } from '../../local/serve/lifecycle.ts';
import { openQueueSide } from '../../local/serve/queue.ts';
import { parseConfig } from '../../shared/config.ts';
import { TransientError } from '../../shared/errors.ts';
import type { MirrorJob } from '../../shared/messages.ts';

const config = parseConfig({}, 'test config');
const options = { config, maxReceives: 3, visibilityTimeoutSeconds: 30 };

const job: MirrorJob = {
  v: 1,
  source: 'flatcar',
  channel: 'stable',
  board: 'amd64-usr',
  version: '4081.2.0',
  artifact: 'version.txt',
  url: 'https://stable.release.flatcar-linux.net/amd64-usr/4081.2.0/version.txt',
  signatureUrl: 'https://stable.release.flatcar-linux.net/amd64-usr/4081.2.0/version.txt.sig',
};

describe('the queue side of one machine', () => {
  let lifecycle: Lifecycle | undefined;
  afterEach(async () => {
    await lifecycle?.stop();
    lifecycle = undefined;
  });

  it('on demand, starts nothing until a job is sent, then starts fauxqs once and tells its listener', async () => {
    lifecycle = createLifecycle(silentLogger);
    const side = await openQueueSide(options, lifecycle, 'on-demand');
    const started: string[] = [];
    side.onStarted((queue) => started.push(queue.resources.jobsQueueUrl));
    expect(side.started).toBe(false);
    expect(started).toEqual([]);

    await side.jobs.sendJobs([job]);
    expect(side.started).toBe(true);
    expect(started).toHaveLength(1);
    const queue = await side.get();
    expect(started).toEqual([queue.resources.jobsQueueUrl]);
    const received = await queue.clients.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queue.resources.jobsQueueUrl, WaitTimeSeconds: 1 }),
    );
    expect(received.Messages?.map((m) => JSON.parse(m.Body ?? '{}'))).toEqual([job]);

    // A second send reuses the same stand-in; a listener added now is told at once.
    await side.jobs.sendJobs([job]);
    expect(await side.get()).toBe(queue);
    const late: string[] = [];
    side.onStarted((q) => late.push(q.endpoint));
    expect(late).toEqual([queue.endpoint]);
  });

  it('eager, is up before it resolves', async () => {
    lifecycle = createLifecycle(silentLogger);
    const side = await openQueueSide(options, lifecycle, 'eager');
    expect(side.started).toBe(true);
    const told: string[] = [];
    side.onStarted((queue) => told.push(queue.resources.topicArn));
    expect(told).toHaveLength(1);
    expect(told[0]).toMatch(/^arn:aws:sns:/);
  });

  it('once the host stops, refuses to start as a transient failure, so a late job is retried later', async () => {
    const stopping = createLifecycle(silentLogger);
    const side = await openQueueSide(options, stopping, 'on-demand');
    await stopping.stop();
    await expect(side.jobs.sendJobs([job])).rejects.toBeInstanceOf(TransientError);
    await expect(side.get()).rejects.toThrow(/stopping/);
    expect(side.started).toBe(false);
  });
});
