import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it } from 'vitest';
import { faults } from '../../local/sim-origin/sim-origin.ts';
import type { MirrorDeps } from '../../shared/mirror/deps.ts';
import type { ReleaseManifest } from '../../shared/mirror/finalize.ts';
import { runPoll } from '../../shared/mirror/poller.ts';
import { clients, deliver, drain, type MirrorRig, receiveJobs, startRig } from './mirror-harness.ts';

const MiB = 1024 * 1024;
const board = 'amd64-usr';

async function manifest(
  rig: MirrorRig,
  channel: string,
  version: string,
): Promise<ReleaseManifest | undefined> {
  const body = await rig.store.get(`${channel}/${board}/${version}/release.json`);
  return body === undefined ? undefined : (JSON.parse(new TextDecoder().decode(body)) as ReleaseManifest);
}

/** A worker whose process dies after `bytes` of the upload: no abort, no ledger write after the crash. */
function killedAfter(bytes: number) {
  return (deps: MirrorDeps): MirrorDeps => ({
    ...deps,
    store: {
      ...deps.store,
      async beginUpload(key, options) {
        const upload = await deps.store.beginUpload(key, options);
        return {
          get bytesWritten() {
            return upload.bytesWritten;
          },
          async write(chunk) {
            if (upload.bytesWritten >= bytes) throw new Error('worker process killed');
            await upload.write(chunk);
          },
          commit: () => upload.commit(),
          abort: async () => undefined,
        };
      },
    },
    ledger: { ...deps.ledger, endAttempt: async () => undefined },
  });
}

describe('release mirror under faults', () => {
  let rig: MirrorRig | undefined;
  afterEach(async () => {
    await rig?.close();
    rig = undefined;
  });

  it('leaves no visible object when a worker dies between parts, and a later delivery completes', async () => {
    rig = await startRig({ channels: ['stable'], store: 's3', visibilityTimeout: 1 });
    const release = await rig.origin.publishRelease({
      channel: 'stable',
      board,
      version: '7.0.0',
      artifacts: [{ name: 'image.bin', size: 12 * MiB }],
    });
    await runPoll(rig.deps, rig.config);
    const records = [
      ...(await receiveJobs(rig.jobsQueue, 10, 1)),
      ...(await receiveJobs(rig.jobsQueue, 10, 0)),
    ];
    expect(records).toHaveLength(2);
    const crashed = await deliver(rig.worker(killedAfter(11 * MiB)), rig.jobsQueue, records);
    expect(crashed.batchItemFailures).toHaveLength(1);

    const key = `stable/${board}/7.0.0/image.bin`;
    expect(await rig.store.head(key)).toBeUndefined();
    expect(await rig.store.list(`stable/${board}/7.0.0/image`)).toEqual([]);
    const artifact = { source: 'flatcar', channel: 'stable', board, version: '7.0.0', artifact: 'image.bin' };
    expect(await rig.ledger.getArtifact(artifact)).toMatchObject({ state: 'pending', attempts: 1 });

    const early = await receiveJobs(rig.jobsQueue, 10, 5);
    expect(early).toHaveLength(1);
    const busy = await deliver(rig.worker(), rig.jobsQueue, early);
    expect(busy.batchItemFailures).toHaveLength(1);

    rig.advance(61_000);
    await drain(rig.worker(), rig.jobsQueue);
    const stored = await rig.store.get(key);
    expect(stored?.byteLength).toBe(12 * MiB);
    expect((await manifest(rig, 'stable', '7.0.0'))?.artifacts['image.bin']?.sha512).toBe(
      release.sha512['image.bin'],
    );
    expect(await rig.ledger.getArtifact(artifact)).toMatchObject({ state: 'verified', attempts: 2 });
    expect((await rig.events()).map((e) => e.event)).toEqual(['release.mirrored']);
  });

  it('finalizes without a missing optional artifact, and holds a release whose required artifact is missing until it appears', async () => {
    rig = await startRig({
      channels: ['stable'],
      artifacts: [{ name: 'version.txt' }, { name: 'image.bin' }, { name: 'extra.bin', required: false }],
    });
    const worker = rig.worker();
    await rig.origin.publishRelease({
      channel: 'stable',
      board,
      version: '6.0.0',
      artifacts: [{ name: 'image.bin', size: 1000 }],
    });
    await runPoll(rig.deps, rig.config);
    expect((await drain(worker, rig.jobsQueue)).failures).toBe(0);
    expect((await manifest(rig, 'stable', '6.0.0'))?.missing).toEqual(['extra.bin']);
    let events = await rig.events();
    expect(events.map((e) => `${e.event} ${e.artifact ?? ''}`).sort()).toEqual([
      'artifact.missing extra.bin',
      'release.mirrored ',
    ]);

    await rig.origin.publishRelease({
      channel: 'stable',
      board,
      version: '6.1.0',
      artifacts: [{ name: 'image.bin', size: 1000 }],
    });
    rig.origin.removeFile(`/stable/${board}/6.1.0/image.bin`);
    await runPoll(rig.deps, rig.config);
    expect((await drain(worker, rig.jobsQueue)).failures).toBe(0);
    expect(await manifest(rig, 'stable', '6.1.0')).toBeUndefined();
    events = await rig.events();
    expect(
      events
        .slice(2)
        .map((e) => `${e.event} ${e.artifact}`)
        .sort(),
    ).toEqual(['artifact.missing extra.bin', 'artifact.missing image.bin']);
    expect(
      await rig.ledger.getArtifact({
        source: 'flatcar',
        channel: 'stable',
        board,
        version: '6.1.0',
        artifact: 'image.bin',
      }),
    ).toMatchObject({
      state: 'missing',
      required: true,
    });

    await rig.origin.publishRelease({
      channel: 'stable',
      board,
      version: '6.1.0',
      artifacts: [{ name: 'image.bin', size: 1000 }],
    });
    expect((await runPoll(rig.deps, rig.config)).resent).toBe(0);
    rig.advance((rig.config.schedule.stallAfterMinutes + 1) * 60_000);
    expect((await runPoll(rig.deps, rig.config)).resent).toBe(1);
    expect((await runPoll(rig.deps, rig.config)).resent).toBe(0);
    await drain(worker, rig.jobsQueue);
    expect((await manifest(rig, 'stable', '6.1.0'))?.missing).toEqual(['extra.bin']);
    expect((await rig.events()).slice(4).map((e) => e.event)).toEqual(['release.mirrored']);
  });

  it('re-sends the jobs of a claimed release whose jobs were lost', async () => {
    rig = await startRig({ channels: ['stable'] });
    await rig.origin.publishRelease({
      channel: 'stable',
      board,
      version: '8.0.0',
      artifacts: [{ name: 'image.bin', size: 1000 }],
    });
    const lost = { sendJobs: async () => undefined };
    expect((await runPoll({ ...rig.deps, jobs: lost }, rig.config)).results[0]?.outcome).toBe('new-release');
    expect(await receiveJobs(rig.jobsQueue, 10, 0)).toEqual([]);
    rig.advance((rig.config.schedule.stallAfterMinutes + 1) * 60_000);
    expect((await runPoll(rig.deps, rig.config)).resent).toBe(2);
    await drain(rig.worker(), rig.jobsQueue);
    expect((await rig.events()).map((e) => e.event)).toEqual(['release.mirrored']);
  });

  it('keeps polling the other channels when one answers 5xx and one times out', async () => {
    rig = await startRig({
      channels: ['alpha', 'beta', 'gamma'],
      config: { limits: { requestTimeoutSeconds: 1 } },
    });
    for (const channel of ['alpha', 'beta', 'gamma']) {
      await rig.origin.publishRelease({
        channel,
        board,
        version: '9.0.0',
        artifacts: [{ name: 'image.bin', size: 10 }],
      });
    }
    rig.origin.inject(`/alpha/${board}/current/version.txt`, faults.status(503));
    rig.origin.inject(`/beta/${board}/current/version.txt`, faults.delay(3000));
    const first = await runPoll(rig.deps, rig.config);
    expect(first.results.map((r) => [r.channel, r.outcome])).toEqual([
      ['alpha', 'error'],
      ['beta', 'error'],
      ['gamma', 'new-release'],
    ]);
    expect(first.results[0]?.error).toMatch(/503/);
    const second = await runPoll(rig.deps, rig.config);
    expect(second.results.map((r) => [r.channel, r.outcome])).toEqual([
      ['alpha', 'new-release'],
      ['beta', 'new-release'],
      ['gamma', 'unchanged'],
    ]);
  });

  it('tells a channel upstream does not publish (404) from a failing one (503), and warns of the 404 once', async () => {
    const started = await startRig({ channels: ['alpha', 'beta', 'gamma'] });
    rig = started;
    for (const channel of ['alpha', 'gamma']) {
      await started.origin.publishRelease({ channel, board, version: '9.0.0', artifacts: [] });
    }
    started.origin.inject(`/alpha/${board}/current/version.txt`, faults.status(503));
    const warnings: Array<[string, Record<string, unknown> | undefined]> = [];
    const deps: MirrorDeps = {
      ...started.deps,
      logger: {
        ...started.deps.logger,
        warn: (message, attributes) => void warnings.push([message, attributes]),
      },
    };
    const outcomes = async () =>
      (await runPoll(deps, started.config)).results.map((r) => `${r.channel}:${r.outcome}`);
    expect(await outcomes()).toEqual(['alpha:error', 'beta:not-published', 'gamma:new-release']);
    expect(await outcomes()).toEqual(['alpha:new-release', 'beta:not-published', 'gamma:unchanged']);
    expect(warnings.filter(([message]) => message === 'poll.not_published')).toEqual([
      [
        'poll.not_published',
        {
          source: 'flatcar',
          channel: 'beta',
          board,
          url: `${started.origin.url}/beta/${board}/current/version.txt`,
        },
      ],
    ]);
    // The 503 is an unreachable origin, said once for the one poll it failed; the 404 never is.
    expect(
      warnings.filter(([message]) => message === 'poll.origin_unreachable').map(([, a]) => a?.channel),
    ).toEqual(['alpha']);
  });

  it('acknowledges a malformed job, retries a 503, and refuses a job whose URL is not the configured one', async () => {
    rig = await startRig({ channels: ['stable'], visibilityTimeout: 1 });
    await rig.origin.publishRelease({
      channel: 'stable',
      board,
      version: '10.0.0',
      artifacts: [{ name: 'image.bin', size: 1000 }],
    });
    rig.origin.inject(/\/10\.0\.0\/image\.bin$/, faults.status(503));
    await runPoll(rig.deps, rig.config);
    await clients.sqs.send(new SendMessageCommand({ QueueUrl: rig.jobsQueue.url, MessageBody: 'not json' }));
    const forged = {
      v: 1,
      channel: 'stable',
      board,
      version: '10.0.0',
      artifact: 'image.bin',
      url: 'http://127.0.0.1:1/evil/image.bin',
      signatureUrl: 'http://127.0.0.1:1/evil/image.bin.sig',
    };
    await clients.sqs.send(
      new SendMessageCommand({ QueueUrl: rig.jobsQueue.url, MessageBody: JSON.stringify(forged) }),
    );
    const report = await drain(rig.worker(), rig.jobsQueue);
    expect(report.failures).toBe(1);
    expect(
      await rig.ledger.getArtifact({
        source: 'flatcar',
        channel: 'stable',
        board,
        version: '10.0.0',
        artifact: 'image.bin',
      }),
    ).toMatchObject({
      state: 'verified',
      attempts: 2,
    });
    expect((await rig.events()).map((e) => e.event)).toEqual(['release.mirrored']);
  });

  it('refuses to finalize a release whose signed DIGESTS disagree with the bytes', async () => {
    rig = await startRig({
      channels: ['stable'],
      artifacts: [{ name: 'version.txt' }, { name: 'image.bin' }, { name: 'image.bin.DIGESTS' }],
    });
    const wrong = `# SHA512 HASH\n${'ab'.repeat(64)}  image.bin\n`;
    await rig.origin.publishRelease({
      channel: 'stable',
      board,
      version: '13.0.0',
      artifacts: [
        { name: 'image.bin', size: 1000 },
        { name: 'image.bin.DIGESTS', content: wrong },
      ],
    });
    await runPoll(rig.deps, rig.config);
    expect((await drain(rig.worker(), rig.jobsQueue)).failures).toBe(0);
    expect(await manifest(rig, 'stable', '13.0.0')).toBeUndefined();
    expect(await rig.store.head(`stable/${board}/13.0.0/image.bin`)).toBeUndefined();
    expect(await rig.store.head(`stable/${board}/current/version.txt`)).toBeUndefined();
    const events = await rig.events();
    expect(events.map((e) => [e.event, e.artifact, e.detail.reason])).toEqual([
      ['artifact.verification_failed', 'image.bin', 'digests-mismatch'],
    ]);
  });

  it('starts over when the object changes under a resume, and stores the new object once', async () => {
    rig = await startRig({ channels: ['stable'], visibilityTimeout: 1 });
    const release = await rig.origin.publishRelease({
      channel: 'stable',
      board,
      version: '14.0.0',
      artifacts: [{ name: 'image.bin', size: 3 * MiB }],
    });
    rig.origin.inject(/\/14\.0\.0\/image\.bin$/, faults.dropAfter(MiB));
    rig.origin.inject(/\/14\.0\.0\/image\.bin$/, faults.changeEtag(), { after: 1 });
    await runPoll(rig.deps, rig.config);
    const report = await drain(rig.worker(), rig.jobsQueue);
    expect(report.failures).toBe(1);
    const gets = rig.origin.requests.filter((r) => r.path.endsWith('/14.0.0/image.bin'));
    expect(gets.map((r) => [r.status, r.range !== undefined])).toEqual([
      [200, false],
      [200, true],
      [200, false],
    ]);
    const stored = await rig.store.get(`stable/${board}/14.0.0/image.bin`);
    expect(stored?.byteLength).toBe(3 * MiB);
    expect(
      await rig.ledger.getArtifact({
        source: 'flatcar',
        channel: 'stable',
        board,
        version: '14.0.0',
        artifact: 'image.bin',
      }),
    ).toMatchObject({ state: 'verified', attempts: 2, sha512: release.sha512['image.bin'] });
  });

  it('refuses an artifact over the size cap before storing a byte', async () => {
    rig = await startRig({ channels: ['stable'], config: { limits: { maxArtifactBytes: MiB } } });
    await rig.origin.publishRelease({
      channel: 'stable',
      board,
      version: '11.0.0',
      artifacts: [{ name: 'image.bin', size: 2 * MiB }],
    });
    await runPoll(rig.deps, rig.config);
    expect((await drain(rig.worker(), rig.jobsQueue)).failures).toBe(0);
    expect(await rig.store.list(`stable/${board}/11.0.0/image`)).toEqual([]);
    expect(
      await rig.ledger.getArtifact({
        source: 'flatcar',
        channel: 'stable',
        board,
        version: '11.0.0',
        artifact: 'image.bin',
      }),
    ).toMatchObject({
      state: 'pending',
      lastError: expect.stringMatching(/maxArtifactBytes|too large|limit/i),
    });
  });

  it('warns once a day about a signing key that expires soon, with a metric on every run', async () => {
    rig = await startRig({ channels: ['stable'] });
    const expiring = {
      primaryKeyFingerprint: 'A'.repeat(40),
      signingKeyFingerprint: 'B'.repeat(40),
      expires: new Date(Date.now() + 5 * 86_400_000),
    };
    const metrics: [string, number][] = [];
    const deps: MirrorDeps = {
      ...rig.deps,
      signatures: {
        ...rig.deps.signatures,
        status: () => ({ current: [expiring], expiringSoon: [expiring] }),
      },
      metrics: {
        addMetric: (name, _unit, value) => {
          metrics.push([name, value]);
        },
      },
    };
    expect((await runPoll(deps, rig.config)).expiringKeys).toEqual(['B'.repeat(40)]);
    await runPoll(deps, rig.config);
    let events = await rig.events();
    expect(events.map((e) => [e.event, e.detail.signingKeyFingerprint])).toEqual([
      ['signing_key.expiring', 'B'.repeat(40)],
    ]);
    expect(metrics).toEqual([
      ['SigningKeyExpiring', 1],
      ['SigningKeyExpiring', 1],
    ]);
    rig.advance(86_400_000);
    await runPoll(deps, rig.config);
    events = await rig.events();
    expect(events).toHaveLength(2);
  });
});
