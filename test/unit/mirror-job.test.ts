import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { createWorkerHandler } from '../../functions/mirror-worker/handler.ts';
import type { LogRecord } from '../../local/runtime/log.ts';
import { parseConfig } from '../../shared/config.ts';
import { ConfigError, TransientError } from '../../shared/errors.ts';
import { dispositionOf, retryDelaySeconds, runMirrorJob } from '../../shared/mirror/job.ts';
import { resolveMirrorStore } from '../../shared/mirror/store-location.ts';
import { artifactUrls } from '../../shared/release/layout.ts';
import { depsWithLedgerDown } from '../support/mirror-deps.ts';

const config = parseConfig({ channels: [{ name: 'stable', baseUrl: 'http://127.0.0.1:9/{channel}' }] });
const [source] = config.sources;
const stable = source?.channels[0];
if (source === undefined || stable === undefined) throw new Error('no channel');
const urls = artifactUrls(source, stable, 'amd64-usr', '4081.2.0', 'version.txt');

function jobBody(channel = 'stable'): string {
  const job = {
    v: 1,
    source: 'flatcar',
    channel,
    board: 'amd64-usr',
    version: '4081.2.0',
    artifact: 'version.txt',
  };
  return JSON.stringify({ ...job, ...urls });
}

describe('the mirror job policy (runMirrorJob)', () => {
  it('acknowledges a malformed message once, as worker.job_rejected, without touching the ledger', async () => {
    const records: LogRecord[] = [];
    const result = await runMirrorJob('{"v":1', { deps: depsWithLedgerDown(records), config });
    expect(result).toMatchObject({
      disposition: 'ack',
      outcome: 'rejected',
      facts: { code: 'malformed-message' },
    });
    expect(records.map((r) => [r.level, r.event])).toEqual([['error', 'worker.job_rejected']]);
  });

  it('acknowledges a job for a channel the config does not have (a forged or stale message)', async () => {
    const records: LogRecord[] = [];
    const result = await runMirrorJob(jobBody('nightly'), { deps: depsWithLedgerDown(records), config });
    expect(result).toMatchObject({
      disposition: 'ack',
      outcome: 'rejected',
      facts: { code: 'unknown-channel' },
    });
  });

  it('retries a transient failure and says when the job comes back', async () => {
    const records: LogRecord[] = [];
    const result = await runMirrorJob(
      jobBody(),
      { deps: depsWithLedgerDown(records), config },
      { receiveCount: 3, messageId: 'm-1' },
    );
    expect(result).toMatchObject({
      disposition: 'retry',
      outcome: 'failed',
      facts: { code: 'ledger-unavailable' },
    });
    expect(result.error).toBeInstanceOf(TransientError);
    expect(records).toEqual([
      expect.objectContaining({
        level: 'warn',
        event: 'worker.job_retry',
        messageId: 'm-1',
        receiveCount: 3,
        retryInSeconds: 20,
      }),
    ]);
  });

  it('retries a job stopped by its host, quietly', async () => {
    const records: LogRecord[] = [];
    const stop = new AbortController();
    stop.abort();
    const result = await runMirrorJob(
      jobBody(),
      { deps: depsWithLedgerDown(records), config },
      { signal: stop.signal },
    );
    expect(result).toMatchObject({ disposition: 'retry', outcome: 'aborted' });
    expect(records.filter((r) => r.level !== 'debug')).toEqual([]);
  });

  it('decides by class alone: a PermanentError (ConfigError too) is ack, anything else retry', () => {
    expect(dispositionOf(new ConfigError('bad'))).toBe('ack');
    expect(dispositionOf(new TransientError('x', 'y'))).toBe('retry');
    expect(dispositionOf(new Error('socket hang up'))).toBe('retry');
    expect(dispositionOf('thrown string')).toBe('retry');
  });
});

describe('the one retry schedule (queue.retry)', () => {
  it('doubles from the first delay per delivery, capped at the maximum', () => {
    const retry = parseConfig({}).queue.retry;
    expect(retry).toEqual({ maxReceives: 5, firstDelaySeconds: 5, maxDelaySeconds: 300 });
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((n) => retryDelaySeconds(n, retry))).toEqual([
      5, 10, 20, 40, 80, 160, 300, 300,
    ]);
    expect(retryDelaySeconds(1, { maxReceives: 1, firstDelaySeconds: 0, maxDelaySeconds: 0 })).toBe(0);
  });

  it('refuses a cap below the first delay, naming the field', () => {
    expect(() => parseConfig({ queue: { retry: { firstDelaySeconds: 60, maxDelaySeconds: 30 } } })).toThrow(
      /queue\.retry\.maxDelaySeconds: maxDelaySeconds must be at least firstDelaySeconds/,
    );
    expect(() => parseConfig({ queue: { retry: { maxReceives: 0 } } })).toThrow(/queue\.retry\.maxReceives/);
  });

  it('makes the Lambda worker hide a retried message for the same delay before reporting it failed', async () => {
    const records: LogRecord[] = [];
    const hidden: Array<[string, number]> = [];
    const handler = createWorkerHandler(async () => ({
      deps: depsWithLedgerDown(records),
      config,
      delayRetry: async (receiptHandle, seconds) => {
        hidden.push([receiptHandle, seconds]);
      },
    }));
    const record = {
      messageId: 'm-2',
      receiptHandle: 'r-2',
      body: jobBody(),
      attributes: { ApproximateReceiveCount: '2' },
    } as unknown as SQSRecord;
    const response = await handler({ Records: [record] } as SQSEvent);
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'm-2' }]);
    expect(hidden).toEqual([['r-2', 10]]);
  });
});

describe('where the mirror lives (resolveMirrorStore)', () => {
  it('prefers a deployed bucket (keeping the config prefix), then an S3 config, then the host folder', () => {
    const s3 = parseConfig({ store: { kind: 's3', bucket: 'configured', prefix: 'mirror/' } });
    const local = parseConfig({});
    expect(resolveMirrorStore(s3, { mirrorBucket: 'deployed' })).toEqual({
      kind: 's3',
      bucket: 'deployed',
      prefix: 'mirror/',
    });
    expect(resolveMirrorStore(local, { mirrorBucket: 'deployed' })).toEqual({
      kind: 's3',
      bucket: 'deployed',
      prefix: '',
    });
    expect(resolveMirrorStore(s3, { localMirrorRoot: '/data/mirror' })).toEqual(s3.store);
    expect(resolveMirrorStore(local, { localMirrorRoot: '/data/mirror' })).toEqual({
      kind: 'local',
      path: '/data/mirror',
    });
    expect(resolveMirrorStore(local, {})).toEqual({ kind: 'local', path: 'data/mirror' });
  });
});
