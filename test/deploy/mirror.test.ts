import { createHash } from 'node:crypto';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { faults, type SimOrigin } from '../../local/sim-origin/sim-origin.ts';
import { defaultArtifacts } from './harness/default-artifacts.ts';
import type { Deployment } from './harness/deployment.ts';
import { deployStack } from './harness/fixture.ts';
import { MirrorDriver } from './harness/mirror-driver.ts';
import { originHookTimeoutMs, startDeployedOrigin } from './harness/origin.ts';

const KiB = 1024;

/** Sizes differ per artifact, so a mix-up between two of them shows as a wrong byte count. */
const sizes: Record<string, number> = {
  'flatcar_production_openstack_image.img.bz2': 300 * KiB,
};
const artifacts = defaultArtifacts((name) => sizes[name] ?? 96 * KiB + name.length * KiB);

const sha512 = (bytes: Buffer | undefined) =>
  createHash('sha512')
    .update(bytes ?? Buffer.alloc(0))
    .digest('hex');

/** A path pattern for one artifact of one version on the origin (not its `.sig`). */
const artifactPath = (version: string, name: string) =>
  new RegExp(`/${version.replaceAll('.', '\\.')}/${name.replaceAll('.', '\\.')}$`);

// The deployed config names one origin address: this file holds it for all its cases, then lets go.
let origin: SimOrigin;
beforeAll(async () => {
  origin = await startDeployedOrigin();
}, originHookTimeoutMs());
afterAll(() => origin?.close());

/**
 * The poller and worker bundles, run as Lambda runs them, mirroring from the sim origin the deployed
 * config points at: scheduled event → poller → jobs queue → worker (SQS events from the real queue) →
 * mirror bucket, ledger and topic. Cases run in order on one deployment, each with a newer release.
 */
describe('the deployed mirror pipeline', () => {
  let deployment: Deployment;
  let mirror: MirrorDriver;

  beforeAll(async () => {
    deployment = await deployStack();
    mirror = await MirrorDriver.create(deployment, origin);
  });
  afterAll(() => deployment?.close());

  it('mirrors a release end to end: byte-identical artifacts, current/version.txt, release.mirrored', async () => {
    const release = await mirror.publish('3510.2.1', artifacts);
    const report = await mirror.poll();
    expect(report.results).toMatchObject([
      { channel: mirror.channel, board: mirror.board, outcome: 'new-release', version: '3510.2.1' },
    ]);

    const invocations = await mirror.drain();
    expect(invocations.flatMap((i) => i.failed)).toEqual([]);
    // One job per configured artifact, each delivered alone (the mapping's batch size).
    expect(invocations.map((i) => i.records.length)).toEqual(
      new Array(artifacts.length + 1).fill(mirror.jobs.batchSize),
    );

    for (const name of ['version.txt', ...artifacts.map((a) => a.name)]) {
      const stored = await mirror.object(mirror.key(`3510.2.1/${name}`));
      expect(stored, name).toBeDefined();
      expect(sha512(stored), name).toBe(release.sha512[name]);
      expect(await mirror.object(mirror.key(`3510.2.1/${name}.sig`)), `${name}.sig`).toBeDefined();
    }
    expect(await mirror.mirroredVersion()).toBe('3510.2.1');
    const mirrored = await mirror.subscriber.waitFor((e) => e.event === 'release.mirrored');
    expect(mirrored).toMatchObject({ channel: mirror.channel, board: mirror.board, version: '3510.2.1' });
  });

  it('acknowledges a tampered artifact and alerts, without retrying it', async () => {
    const tampered = 'flatcar_production_pxe.vmlinuz';
    const path = artifactPath('3510.2.2', tampered);
    const fault = origin.inject(path, faults.tamper(1000));
    await mirror.publish('3510.2.2', artifacts);
    await mirror.poll();

    const invocations = await mirror.drain();
    expect(fault.applied).toBe(1);
    // Acknowledged: no batch item failure, so SQS never delivers it again.
    expect(invocations.flatMap((i) => i.failed)).toEqual([]);
    expect(origin.requests.filter((r) => r.method === 'GET' && path.test(r.path))).toHaveLength(1);
    const alert = await mirror.subscriber.waitFor((e) => e.event === 'artifact.verification_failed');
    expect(alert).toMatchObject({ version: '3510.2.2', artifact: tampered });
    expect(await mirror.keysUnder(mirror.key(`3510.2.2/${tampered}`))).toEqual([]);
    // The release is incomplete, so the mirror's current stays where it was.
    expect(await mirror.mirroredVersion()).toBe('3510.2.1');
  });

  it('retries a 5xx from the origin through the queue until the artifact is mirrored', async () => {
    const flaky = 'flatcar_production_openstack_image.img.bz2';
    origin.inject(artifactPath('3510.2.3', flaky), faults.status(503), { times: 2 });
    const release = await mirror.publish('3510.2.3', artifacts);
    await mirror.poll();

    const invocations = await mirror.drain();
    const flakyDeliveries = invocations.filter((i) => i.records.some((r) => r.body.includes(flaky)));
    expect(flakyDeliveries.map((i) => i.failed.length)).toEqual([1, 1, 0]);
    expect(flakyDeliveries.map((i) => i.records[0]?.attributes.ApproximateReceiveCount)).toEqual([
      '1',
      '2',
      '3',
    ]);
    expect(sha512(await mirror.object(mirror.key(`3510.2.3/${flaky}`)))).toBe(release.sha512[flaky]);
    expect(await mirror.mirroredVersion()).toBe('3510.2.3');
    await mirror.subscriber.waitFor((e) => e.event === 'release.mirrored' && e.version === '3510.2.3');
  });

  it('dead-letters a job that keeps failing, after the maxReceiveCount the template declares', async () => {
    const queueProps = deployment.template.Resources[deployment.logicalId('Jobs/Queue')]?.Properties ?? {};
    const { maxReceiveCount } = queueProps.RedrivePolicy as { maxReceiveCount: number };
    const broken = 'flatcar_production_pxe_image.cpio.gz';
    origin.inject(artifactPath('3510.2.4', broken), faults.status(500), { times: 1000 });
    await mirror.publish('3510.2.4', artifacts);
    await mirror.poll();

    const invocations = await mirror.drain();
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
      { channel: mirror.channel, board: mirror.board, version: '3510.2.4', artifact: broken },
    ]);
    expect(await mirror.mirroredVersion()).toBe('3510.2.3');
  });

  it('ran every case on one warm container per function', () => {
    expect([deployment.coldStarts('Poller'), deployment.coldStarts('Worker')]).toEqual([1, 1]);
  });
});
