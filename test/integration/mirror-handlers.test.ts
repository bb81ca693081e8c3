import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { ScheduledEvent } from 'aws-lambda';
import { type FauxqsServer, startFauxqs } from 'fauxqs';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { createWorkerHandler } from '../../functions/mirror-worker/handler.ts';
import { createPollerHandler } from '../../functions/poller/handler.ts';
import { type SimOrigin, startSimOrigin } from '../../local/sim-origin/sim-origin.ts';
import { type AwsClients, makeAwsClients } from '../../shared/aws-clients.ts';
import { defaultTrustedFingerprints } from '../../shared/config.ts';
import { ConfigError } from '../../shared/errors.ts';
import { type MirrorLogger, silentLogger } from '../../shared/mirror/deps.ts';
import { loadMirrorRuntime } from '../../shared/mirror/wiring.ts';
import { runtimeEnvNames } from '../../shared/runtime-env.ts';
import { freshBucket, freshQueue, freshTable, freshTopic } from '../support/emulators.ts';
import { drain, tableActive } from './mirror-harness.ts';

const board = 'amd64-usr';
const scheduled = { time: '2026-11-26T10:00:00Z' } as ScheduledEvent;

/**
 * Its own fauxqs, started with host `localhost`: the shared one names queues http://sqs.us-east-1.127.0.0.1:…,
 * which the runtime environment's URL check refuses (a deployed stack's SQS URLs pass).
 */
describe('mirror Lambda handlers wired from the runtime environment', () => {
  let origin: SimOrigin | undefined;
  let fauxqs: FauxqsServer | undefined;
  let clients: AwsClients;
  beforeAll(async () => {
    fauxqs = await startFauxqs({ port: 0, host: 'localhost', logger: false });
    const endpoint = `http://127.0.0.1:${fauxqs.port}`;
    clients = makeAwsClients({
      s3: endpoint,
      sqs: endpoint,
      sns: endpoint,
      dynamodb: inject('dynamodbEndpoint'),
    });
  });
  afterAll(async () => {
    await fauxqs?.stop();
  });
  afterEach(async () => {
    await origin?.close();
    origin = undefined;
  });

  it('polls and mirrors into the mirror bucket, trusting a key added through the rotation object', async () => {
    origin = await startSimOrigin();
    const table = await freshTable(clients);
    await tableActive(table, clients);
    const queue = await freshQueue(clients, 'jobs');
    const bucket = await freshBucket(clients);
    const topicArn = await freshTopic(clients);
    await clients.s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: 'trust/keyring.asc', Body: origin.publicKeyArmored }),
    );
    await origin.publishRelease({
      channel: 'stable',
      board,
      version: '12.0.0',
      artifacts: [{ name: 'image.bin', size: 1000 }],
    });
    const env = {
      [runtimeEnvNames.config]: JSON.stringify({
        channels: [{ name: 'stable', baseUrl: origin.baseUrl }],
        artifacts: [{ name: 'version.txt' }, { name: 'image.bin' }],
        keyring: { trustedFingerprints: [...defaultTrustedFingerprints, origin.primaryFingerprint] },
      }),
      [runtimeEnvNames.resources]: JSON.stringify({
        tableName: table,
        jobsQueueUrl: queue.url,
        topicArn,
        mirrorBucket: bucket,
        trustKeyringKey: 'trust/keyring.asc',
      }),
    };
    const runtime = loadMirrorRuntime(env, { logger: silentLogger, role: 'poller', clients });
    const metrics: [string, number][] = [];
    let published = 0;
    const poller = createPollerHandler(() => runtime, {
      addMetric: (name, _unit, value) => {
        metrics.push([name, value]);
      },
      publishStoredMetrics: () => {
        published++;
      },
    });
    const report = await poller(scheduled);
    expect(report.results.map((r) => [r.outcome, r.error])).toEqual([['new-release', undefined]]);
    expect(metrics).toEqual([
      ['PollErrors', 0],
      ['ReleasesClaimed', 1],
      ['PruneFailures', 0],
    ]);
    expect(published).toBe(1);

    const worker = createWorkerHandler(() => runtime, silentLogger);
    expect((await drain(worker, queue, { sqs: clients.sqs })).failures).toBe(0);
    const { store } = (await runtime).deps;
    expect(await store.list(`stable/${board}/`)).toEqual([
      `stable/${board}/12.0.0/image.bin`,
      `stable/${board}/12.0.0/image.bin.sig`,
      `stable/${board}/12.0.0/release.json`,
      `stable/${board}/12.0.0/version.txt`,
      `stable/${board}/12.0.0/version.txt.sig`,
      `stable/${board}/current/version.txt`,
      `stable/${board}/current/version.txt.sig`,
    ]);
  });

  it('counts a board upstream does not publish as no poll error, and warns of it on the first poll only', async () => {
    origin = await startSimOrigin();
    const table = await freshTable(clients);
    await tableActive(table, clients);
    const queue = await freshQueue(clients, 'jobs');
    await origin.publishRelease({ channel: 'stable', board, version: '12.0.0', artifacts: [] });
    const env = {
      [runtimeEnvNames.config]: JSON.stringify({
        channels: [{ name: 'stable', baseUrl: origin.baseUrl }],
        boards: [board, 'arm64-usr'],
        artifacts: [{ name: 'version.txt' }],
      }),
      [runtimeEnvNames.resources]: JSON.stringify({
        tableName: table,
        jobsQueueUrl: queue.url,
        topicArn: await freshTopic(clients),
        mirrorBucket: await freshBucket(clients),
      }),
    };
    const warnings: string[] = [];
    const logger: MirrorLogger = { ...silentLogger, warn: (message) => void warnings.push(message) };
    const runtime = loadMirrorRuntime(env, { logger, role: 'poller', clients });
    const metrics: [string, number][] = [];
    const poller = createPollerHandler(() => runtime, {
      addMetric: (name, _unit, value) => void metrics.push([name, value]),
      publishStoredMetrics: () => {},
    });
    const outcomes = async () =>
      (await poller(scheduled)).results.map((r) => `${r.board}:${r.outcome}`).sort();
    expect(await outcomes()).toEqual(['amd64-usr:new-release', 'arm64-usr:not-published']);
    expect(await outcomes()).toEqual(['amd64-usr:unchanged', 'arm64-usr:not-published']);
    expect(metrics.filter(([name]) => name === 'PollErrors')).toEqual([
      ['PollErrors', 0],
      ['PollErrors', 0],
    ]);
    expect(warnings.filter((message) => message.startsWith('poll.'))).toEqual(['poll.not_published']);
  });

  it('fails at cold start of the poller, naming the missing resource', async () => {
    const env = {
      [runtimeEnvNames.config]: '{}',
      [runtimeEnvNames.resources]: JSON.stringify({
        tableName: 'ledger',
        topicArn: 'arn:aws:sns:us-east-1:1:t',
      }),
    };
    const failure = loadMirrorRuntime(env, { logger: silentLogger, role: 'poller', clients });
    await expect(failure).rejects.toBeInstanceOf(ConfigError);
    await expect(failure).rejects.toThrow(/jobsQueueUrl/);
  });
});
