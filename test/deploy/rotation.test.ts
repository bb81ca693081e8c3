import { PutObjectCommand } from '@aws-sdk/client-s3';
import { type PrivateKey, readPrivateKey } from 'openpgp';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type SimOrigin, startSimOrigin } from '../../local/sim-origin/sim-origin.ts';
import { createDynamoLedger } from '../../shared/ledger/ledger.ts';
import type { PollReport } from '../../shared/mirror/poller.ts';
import { defaultArtifacts } from './harness/default-artifacts.ts';
import type { Deployment } from './harness/deployment.ts';
import { drainQueue, type SqsEventSource, scheduledEvent, sqsEventSource } from './harness/event-sources.ts';
import { deployStack } from './harness/fixture.ts';
import { HttpApi, operatorCaller } from './harness/http-api.ts';
import { originHookTimeoutMs } from './harness/origin.ts';
import { subscribeQueue, type TopicSubscriber } from './harness/subscriber.ts';

const channel = 'stable';
const board = 'amd64-usr';
const artifacts = defaultArtifacts(() => 32 * 1024);
const jobsPerRelease = artifacts.length + 1;

/** The public key with only its first `count` subkeys: what the operator has imported so far. */
function publicWith(key: PrivateKey, count: number): string {
  const copy = key.toPublic();
  copy.subkeys.splice(count);
  return copy.armor();
}

/**
 * Key rotation on the deployed bundles, with warm functions throughout: the bundled keyring holds the
 * origin's primary key with its first signing subkey, and each rotation is an upload of the primary key
 * with its next subkey to the trust object in the mirror bucket, never a redeploy.
 */
describe('the deployed functions follow the trust object', () => {
  let deployment: Deployment;
  let origin: SimOrigin;
  let jobs: SqsEventSource;
  let subscriber: TopicSubscriber;
  let key: PrivateKey;
  let api: HttpApi;
  const subkey = (index: number) => key.subkeys[index]?.getFingerprint().toUpperCase() ?? '';
  const keyId = (index: number) => key.subkeys[index]?.getKeyID().toHex().toUpperCase() ?? '';

  const poll = () => deployment.invoke<PollReport>('Poller', scheduledEvent(deployment, 'Poller'));
  const ledger = () => createDynamoLedger(deployment.clients.doc, deployment.ref('Ledger'));
  const current = async () => (await ledger().getCurrent({ source: 'flatcar', channel, board }))?.version;

  async function upload(text: string): Promise<void> {
    await deployment.clients.s3.send(
      new PutObjectCommand({ Bucket: deployment.ref('MirrorBucket'), Key: 'trust/keyring.asc', Body: text }),
    );
  }

  async function release(version: string, signer: number): Promise<void> {
    await origin.publishRelease({ channel, board, version, artifacts, signingSubkey: subkey(signer) });
  }

  beforeAll(async () => {
    const fixture = inject('deployFixture');
    const bundled = await readPrivateKey({ armoredKey: fixture.originPrivateKeyArmored });
    key = await (await bundled.addSubkey({ sign: true })).addSubkey({ sign: true });
    deployment = await deployStack();
    origin = await startSimOrigin({ ...fixture.origin, privateKeyArmored: key.armor() });
    jobs = sqsEventSource(deployment, 'Worker');
    api = new HttpApi(deployment);
    subscriber = await subscribeQueue(deployment.clients, deployment.ref('Events/Topic'));
  }, originHookTimeoutMs());
  afterAll(async () => {
    await deployment?.close();
    await origin?.close();
  });

  it('mirrors N+1, signed only by the new subkey, after the upload, without a cold start', async () => {
    await release('3600.0.0', 0);
    await poll();
    expect((await drainQueue(jobs)).invocations.flatMap((i) => i.failed)).toEqual([]);
    expect(await current()).toBe('3600.0.0');

    await upload(publicWith(key, 2));
    await release('3600.1.0', 1);
    expect((await poll()).results).toMatchObject([{ outcome: 'new-release', version: '3600.1.0' }]);
    const { invocations } = await drainQueue(jobs);
    expect(invocations.flatMap((i) => i.failed)).toEqual([]);
    expect(await current()).toBe('3600.1.0');
    const detail = await ledger().getRelease({ source: 'flatcar', channel, board, version: '3600.1.0' });
    expect(new Set(detail?.artifactStates.map((a) => a.signingKeyFingerprint))).toEqual(new Set([subkey(1)]));
    await subscriber.waitFor((e) => e.event === 'release.mirrored' && e.version === '3600.1.0');
    expect(subscriber.received.filter((e) => e.event === 'signing_key.unknown')).toEqual([]);
    // The same warm containers verified both releases: the new key came from the trust object, not a restart.
    expect(deployment.coldStarts('Worker')).toBe(1);
    expect(deployment.coldStarts('Poller')).toBe(1);
  });

  it('holds N+1 awaiting trust with one alert naming the key, and the next poll after the upload brings it in', async () => {
    await release('3600.2.0', 2);
    await poll();
    expect((await drainQueue(jobs)).invocations.flatMap((i) => i.failed)).toEqual([]);
    const alert = await subscriber.waitFor((e) => e.event === 'signing_key.unknown');
    expect(alert).toMatchObject({ version: '3600.2.0', detail: { keyId: keyId(2) } });
    expect(String(alert.detail.upload)).toMatch(/^s3:\/\/.+\/trust\/keyring\.asc$/);
    const waiting = await ledger().getRelease({ source: 'flatcar', channel, board, version: '3600.2.0' });
    expect(waiting?.artifactStates.map((a) => a.state)).toEqual(
      new Array(jobsPerRelease).fill('awaiting_trust'),
    );
    expect(await current()).toBe('3600.1.0');
    expect((await poll()).requeuedForTrust).toBe(0);

    // The operator's view through the API bundle: listed as awaiting trust; a retry before the upload sends
    // the jobs (through the lazily loaded SQS client), which wait again under the same trust, alerting no more.
    const listed = await api.request({
      method: 'GET',
      path: '/v1/releases?state=awaiting-trust',
      iam: operatorCaller,
    });
    expect(listed.status, listed.body).toBe(200);
    expect(listed.json<{ releases: { version: string }[] }>().releases.map((r) => r.version)).toEqual([
      '3600.2.0',
    ]);
    expect(await api.request({ method: 'GET', path: '/v1/releases' })).toMatchObject({
      status: 403,
      answeredBy: 'gateway',
    });
    const retried = await api.request({
      method: 'POST',
      path: `/v1/releases/flatcar/${channel}/${board}/3600.2.0/retry`,
      headers: { 'content-type': 'application/json' },
      body: '{}',
      iam: operatorCaller,
    });
    expect(retried.status, retried.body).toBe(200);
    expect(retried.json<{ requeued: string[] }>().requeued).toHaveLength(jobsPerRelease);
    expect((await drainQueue(jobs)).invocations).toHaveLength(jobsPerRelease);
    const again = await ledger().getRelease({ source: 'flatcar', channel, board, version: '3600.2.0' });
    expect(again?.artifactStates.map((a) => a.state)).toEqual(
      new Array(jobsPerRelease).fill('awaiting_trust'),
    );

    await upload(publicWith(key, 3));
    expect((await poll()).requeuedForTrust).toBe(jobsPerRelease);
    expect((await drainQueue(jobs)).invocations.flatMap((i) => i.failed)).toEqual([]);
    expect(await current()).toBe('3600.2.0');
    await subscriber.waitFor((e) => e.event === 'release.mirrored' && e.version === '3600.2.0');
    await subscriber.drain();
    expect(subscriber.received.filter((e) => e.event === 'signing_key.unknown')).toHaveLength(1);
    expect(subscriber.received.some((e) => e.event === 'artifact.verification_failed')).toBe(false);
  });
});
