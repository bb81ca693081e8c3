import { createHash } from 'node:crypto';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  faults,
  type PublishedRelease,
  type SimOrigin,
  startSimOrigin,
} from '../../local/sim-origin/sim-origin.ts';
import type { PollReport } from '../../shared/mirror/poller.ts';
import type { Deployment } from './harness/deployment.ts';
import { drainQueue, type SqsEventSource, scheduledEvent, sqsEventSource } from './harness/event-sources.ts';
import { deployStack } from './harness/fixture.ts';
import { subscribeQueue, type TopicSubscriber } from './harness/subscriber.ts';

const channel = 'stable';
const board = 'amd64-usr';
const KiB = 1024;

/** The default artifacts of the deployed config (the operator changed only the origin and its key). */
const artifacts = [
  { name: 'flatcar_production_openstack_image.img.bz2', size: 300 * KiB },
  { name: 'flatcar_production_pxe.vmlinuz', size: 96 * KiB },
  { name: 'flatcar_production_pxe_image.cpio.gz', size: 160 * KiB },
  { name: 'flatcar_production_image.bin.bz2', size: 200 * KiB },
];

/**
 * The poller and worker bundles, run as Lambda runs them, mirroring from the sim origin the deployed
 * config points at: scheduled event → poller → jobs queue → worker (SQS events from the real queue) →
 * mirror bucket, ledger and topic. Cases run in order on one deployment, each with a newer release.
 */
describe('the deployed mirror pipeline', () => {
  let deployment: Deployment;
  let origin: SimOrigin;
  let jobs: SqsEventSource;
  let subscriber: TopicSubscriber;
  let mirrorBucket: string;

  const poll = () => deployment.invoke<PollReport>('Poller', scheduledEvent(deployment, 'Poller'));

  async function object(key: string): Promise<Buffer | undefined> {
    try {
      const got = await deployment.clients.s3.send(new GetObjectCommand({ Bucket: mirrorBucket, Key: key }));
      return Buffer.from((await got.Body?.transformToByteArray()) ?? []);
    } catch (error) {
      if ((error as Error).name === 'NoSuchKey') return undefined;
      throw error;
    }
  }

  async function keysUnder(prefix: string): Promise<string[]> {
    const listed = await deployment.clients.s3.send(
      new ListObjectsV2Command({ Bucket: mirrorBucket, Prefix: prefix }),
    );
    return (listed.Contents ?? []).map((entry) => entry.Key ?? '').sort();
  }

  async function mirroredVersion(): Promise<string | undefined> {
    const text = (await object(`${channel}/${board}/current/version.txt`))?.toString('utf8');
    return text === undefined ? undefined : /^FLATCAR_VERSION_ID=(.+)$/m.exec(text)?.[1];
  }

  function publish(version: string): Promise<PublishedRelease> {
    return origin.publishRelease({ channel, board, version, artifacts });
  }

  const sha512 = (bytes: Buffer) => createHash('sha512').update(bytes).digest('hex');

  beforeAll(async () => {
    const fixture = inject('deployFixture');
    deployment = await deployStack();
    origin = await startSimOrigin({
      ...fixture.origin,
      privateKeyArmored: fixture.originPrivateKeyArmored,
    });
    jobs = sqsEventSource(deployment, 'Worker');
    mirrorBucket = deployment.ref('MirrorBucket');
    subscriber = await subscribeQueue(deployment.clients, deployment.ref('Events/Topic'));
  });
  afterAll(async () => {
    await deployment?.close();
    await origin?.close();
  });

  it('mirrors a release end to end: byte-identical artifacts, current/version.txt, release.mirrored', async () => {
    const release = await publish('3510.2.1');
    const report = await poll();
    expect(report.results).toMatchObject([{ channel, board, outcome: 'new-release', version: '3510.2.1' }]);

    const { invocations } = await drainQueue(jobs);
    expect(invocations.flatMap((i) => i.failed)).toEqual([]);
    // One job per configured artifact, each delivered alone (the mapping's batch size).
    expect(invocations.map((i) => i.records.length)).toEqual(
      new Array(artifacts.length + 1).fill(jobs.batchSize),
    );

    for (const name of ['version.txt', ...artifacts.map((a) => a.name)]) {
      const stored = await object(`${channel}/${board}/3510.2.1/${name}`);
      expect(stored, name).toBeDefined();
      expect(sha512(stored ?? Buffer.alloc(0)), name).toBe(release.sha512[name]);
      expect(await object(`${channel}/${board}/3510.2.1/${name}.sig`), `${name}.sig`).toBeDefined();
    }
    expect(await mirroredVersion()).toBe('3510.2.1');
    const mirrored = await subscriber.waitFor((e) => e.event === 'release.mirrored');
    expect(mirrored).toMatchObject({ channel, board, version: '3510.2.1' });
  });

  it('acknowledges a tampered artifact and alerts, without retrying it', async () => {
    const tampered = 'flatcar_production_pxe.vmlinuz';
    const path = new RegExp(`/3510\\.2\\.2/${tampered.replaceAll('.', '\\.')}$`);
    const fault = origin.inject(path, faults.tamper(1000));
    await publish('3510.2.2');
    await poll();

    const { invocations } = await drainQueue(jobs);
    expect(fault.applied).toBe(1);
    // Acknowledged: no batch item failure, so SQS never delivers it again.
    expect(invocations.flatMap((i) => i.failed)).toEqual([]);
    expect(origin.requests.filter((r) => r.method === 'GET' && path.test(r.path))).toHaveLength(1);
    const alert = await subscriber.waitFor((e) => e.event === 'artifact.verification_failed');
    expect(alert).toMatchObject({ version: '3510.2.2', artifact: tampered });
    expect(await keysUnder(`${channel}/${board}/3510.2.2/${tampered}`)).toEqual([]);
    // The release is incomplete, so the mirror's current stays where it was.
    expect(await mirroredVersion()).toBe('3510.2.1');
  });

  it('retries a 5xx from the origin through the queue until the artifact is mirrored', async () => {
    const flaky = 'flatcar_production_openstack_image.img.bz2';
    const path = new RegExp(`/3510\\.2\\.3/${flaky.replaceAll('.', '\\.')}$`);
    origin.inject(path, faults.status(503), { times: 2 });
    const release = await publish('3510.2.3');
    await poll();

    const { invocations } = await drainQueue(jobs);
    const flakyDeliveries = invocations.filter((i) => i.records.some((r) => r.body.includes(flaky)));
    expect(flakyDeliveries.map((i) => i.failed.length)).toEqual([1, 1, 0]);
    expect(flakyDeliveries.map((i) => i.records[0]?.attributes.ApproximateReceiveCount)).toEqual([
      '1',
      '2',
      '3',
    ]);
    const stored = await object(`${channel}/${board}/3510.2.3/${flaky}`);
    expect(sha512(stored ?? Buffer.alloc(0))).toBe(release.sha512[flaky]);
    expect(await mirroredVersion()).toBe('3510.2.3');
    await subscriber.waitFor((e) => e.event === 'release.mirrored' && e.version === '3510.2.3');
  });

  it('dead-letters a job that keeps failing, after the maxReceiveCount the template declares', async () => {
    const queueProps = deployment.template.Resources[deployment.logicalId('Jobs/Queue')]?.Properties ?? {};
    const { maxReceiveCount } = queueProps.RedrivePolicy as { maxReceiveCount: number };
    const broken = 'flatcar_production_pxe_image.cpio.gz';
    const path = new RegExp(`/3510\\.2\\.4/${broken.replaceAll('.', '\\.')}$`);
    origin.inject(path, faults.status(500), { times: 1000 });
    await publish('3510.2.4');
    await poll();

    const { invocations } = await drainQueue(jobs);
    const failures = invocations.filter((i) => i.failed.length > 0);
    expect(failures).toHaveLength(maxReceiveCount);
    expect(failures.every((i) => i.records[0]?.body.includes(broken))).toBe(true);

    const dead = await deployment.clients.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: deployment.ref('Jobs/DeadLetter'),
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
      }),
    );
    expect(dead.Messages?.map((m) => JSON.parse(m.Body ?? '{}'))).toMatchObject([
      { channel, board, version: '3510.2.4', artifact: broken },
    ]);
    expect(await mirroredVersion()).toBe('3510.2.3');
  });
});
