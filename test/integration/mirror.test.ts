import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { faults } from '../../local/sim-origin/sim-origin.ts';
import type { CldistEvent } from '../../shared/messages.ts';
import type { MirrorDeps } from '../../shared/mirror/deps.ts';
import type { ReleaseManifest } from '../../shared/mirror/finalize.ts';
import { runPoll } from '../../shared/mirror/poller.ts';
import { deliver, drain, type MirrorRig, receiveJobs, startRig } from './mirror-harness.ts';

const MiB = 1024 * 1024;
const board = 'amd64-usr';
const artifacts = [{ name: 'version.txt' }, { name: 'image.bin' }, { name: 'image.bin.DIGESTS' }];

const sha512 = (bytes: Uint8Array) => createHash('sha512').update(bytes).digest('hex');
const named = (events: CldistEvent[], name: CldistEvent['event']) => events.filter((e) => e.event === name);

async function text(rig: MirrorRig, key: string): Promise<string | undefined> {
  const body = await rig.store.get(key);
  return body === undefined ? undefined : new TextDecoder().decode(body);
}

describe('release mirror over SQS, DynamoDB and SNS stand-ins and the sim origin', () => {
  let rig: MirrorRig | undefined;
  afterEach(async () => {
    await rig?.close();
    rig = undefined;
  });

  it('mirrors 2 channels × 2 versions verified, writes release.json, and moves current/ forward', async () => {
    rig = await startRig({ artifacts });
    const worker = rig.worker();
    const versions = { alpha: ['100.0.0', '100.1.0'], beta: ['90.0.0', '90.0.1'] };
    const published = new Map<string, Awaited<ReturnType<MirrorRig['origin']['publishRelease']>>>();
    for (const round of [0, 1]) {
      for (const channel of ['alpha', 'beta'] as const) {
        const version = versions[channel][round] ?? '';
        const release = await rig.origin.publishRelease({
          channel,
          board,
          version,
          artifacts: [{ name: 'image.bin', size: 3 * MiB + 17 }],
        });
        published.set(`${channel}/${version}`, release);
      }
      const poll = await runPoll(rig.deps, rig.config);
      expect(poll.results.map((r) => [r.channel, r.outcome, r.version])).toEqual([
        ['alpha', 'new-release', versions.alpha[round]],
        ['beta', 'new-release', versions.beta[round]],
      ]);
      await drain(worker, rig.jobsQueue);
    }

    for (const [path, release] of published) {
      const [channel = '', version = ''] = path.split('/');
      const prefix = `${channel}/${board}/${version}`;
      const image = await rig.store.get(`${prefix}/image.bin`);
      expect(image && sha512(image)).toBe(release.sha512['image.bin']);
      expect(await rig.store.head(`${prefix}/image.bin.sig`)).toBeDefined();
      expect(await rig.store.head(`${prefix}/version.txt.sig`)).toBeDefined();
      const manifest = JSON.parse((await text(rig, `${prefix}/release.json`)) ?? '{}') as ReleaseManifest;
      expect(manifest.artifacts['image.bin']).toMatchObject({
        size: 3 * MiB + 17,
        sha512: release.sha512['image.bin'],
        signingKeyFingerprint: rig.origin.signingKeyFingerprint,
        primaryKeyFingerprint: rig.origin.primaryFingerprint,
      });
      expect(Object.keys(manifest.artifacts).sort()).toEqual([
        'image.bin',
        'image.bin.DIGESTS',
        'version.txt',
      ]);
      expect(manifest.missing).toEqual([]);
    }
    expect(await text(rig, `alpha/${board}/current/version.txt`)).toContain('_VERSION_ID=100.1.0');
    expect(await text(rig, `beta/${board}/current/version.txt`)).toContain('_VERSION_ID=90.0.1');
    expect(await rig.store.head(`beta/${board}/current/version.txt.sig`)).toBeDefined();

    const events = await rig.events();
    expect(
      named(events, 'release.mirrored')
        .map((e) => `${e.channel}/${e.version}`)
        .sort(),
    ).toEqual(['alpha/100.0.0', 'alpha/100.1.0', 'beta/90.0.0', 'beta/90.0.1']);
    expect(events).toHaveLength(4);

    const before = rig.origin.requests.length;
    const writes: string[] = [];
    const watched: MirrorDeps = {
      ...rig.deps,
      ledger: {
        ...rig.ledger,
        savePollState: async (state) => {
          writes.push(`poll ${state.channel}`);
          await rig?.ledger.savePollState(state);
        },
        claimRelease: async (release, plans) => {
          writes.push(`claim ${release.channel}`);
          return (await rig?.ledger.claimRelease(release, plans)) ?? false;
        },
      },
    };
    const quiet = await runPoll(watched, rig.config);
    expect(writes).toEqual([]);
    expect(quiet.results.map((r) => r.outcome)).toEqual(['unchanged', 'unchanged']);
    const polls = rig.origin.requests.slice(before);
    expect(polls.map((r) => [r.path, r.status])).toEqual(
      expect.arrayContaining([
        [`/alpha/${board}/current/version.txt`, 304],
        [`/beta/${board}/current/version.txt`, 304],
      ]),
    );
    expect(polls).toHaveLength(2);
    expect(await receiveJobs(rig.jobsQueue, 10, 0)).toEqual([]);
  });

  it('refuses a tampered artifact: nothing visible, one alert, no retry, no release.mirrored', async () => {
    rig = await startRig({ channels: ['stable'], visibilityTimeout: 1 });
    await rig.origin.publishRelease({
      channel: 'stable',
      board,
      version: '1.0.0',
      artifacts: [{ name: 'image.bin', size: 2 * MiB }],
    });
    rig.origin.inject(/\/image\.bin$/, faults.tamper(MiB + 5), { times: 10 });
    await runPoll(rig.deps, rig.config);
    const report = await drain(rig.worker(), rig.jobsQueue);
    expect(report.failures).toBe(0);

    expect(await rig.store.list('stable/')).toEqual([
      `stable/${board}/1.0.0/version.txt`,
      `stable/${board}/1.0.0/version.txt.sig`,
    ]);
    const record = await rig.ledger.getArtifact({
      source: 'flatcar',
      channel: 'stable',
      board,
      version: '1.0.0',
      artifact: 'image.bin',
    });
    expect(record).toMatchObject({ state: 'failed_verification', attempts: 1 });
    const events = await rig.events();
    expect(events.map((e) => e.event)).toEqual(['artifact.verification_failed']);
    expect(events[0]?.detail).toMatchObject({ reason: 'tampered' });
    expect(rig.origin.requests.filter((r) => r.path.endsWith('/image.bin'))).toHaveLength(1);

    await rig.deps.jobs.sendJobs([
      {
        v: 1,
        source: 'flatcar',
        channel: 'stable',
        board,
        version: '1.0.0',
        artifact: 'image.bin',
        url: record?.url ?? '',
        signatureUrl: record?.signatureUrl ?? '',
      },
    ]);
    await drain(rig.worker(), rig.jobsQueue);
    expect(rig.origin.requests.filter((r) => r.path.endsWith('/image.bin'))).toHaveLength(1);
    expect(await rig.events()).toHaveLength(1);
  });

  it('resumes a dropped connection with Range and stores the artifact once', async () => {
    rig = await startRig({ channels: ['stable'] });
    const release = await rig.origin.publishRelease({
      channel: 'stable',
      board,
      version: '1.0.0',
      artifacts: [{ name: 'image.bin', size: 6 * MiB }],
    });
    rig.origin.inject(/\/image\.bin$/, faults.dropAfter(2 * MiB + 3));
    await runPoll(rig.deps, rig.config);
    const report = await drain(rig.worker(), rig.jobsQueue);
    expect(report.failures).toBe(0);
    const gets = rig.origin.requests.filter((r) => r.path.endsWith('/image.bin'));
    expect(gets.map((r) => [r.status, r.aborted, r.range !== undefined, r.ifRange !== undefined])).toEqual([
      [200, true, false, false],
      [206, false, true, true],
    ]);
    const image = await rig.store.get(`stable/${board}/1.0.0/image.bin`);
    expect(image && sha512(image)).toBe(release.sha512['image.bin']);
    expect(
      await rig.ledger.getArtifact({
        source: 'flatcar',
        channel: 'stable',
        board,
        version: '1.0.0',
        artifact: 'image.bin',
      }),
    ).toMatchObject({
      state: 'verified',
      attempts: 1,
      size: 6 * MiB,
    });
    expect(named(await rig.events(), 'release.mirrored')).toHaveLength(1);
  });

  it('gives one object and one release.mirrored when every job is delivered 3 times', async () => {
    rig = await startRig({ channels: ['stable'], visibilityTimeout: 1 });
    await rig.origin.publishRelease({
      channel: 'stable',
      board,
      version: '2.0.0',
      artifacts: [{ name: 'image.bin', size: MiB }],
    });
    const jobs = rig.deps.jobs;
    const tripled = {
      sendJobs: async (batch: Parameters<typeof jobs.sendJobs>[0]) =>
        jobs.sendJobs([...batch, ...batch, ...batch]),
    };
    await runPoll({ ...rig.deps, jobs: tripled }, rig.config);
    const first = await receiveJobs(rig.jobsQueue, 10, 1);
    expect(first.length + (await receiveJobs(rig.jobsQueue, 10, 0)).length).toBe(6);
    await drain(rig.worker(), rig.jobsQueue);
    expect(await rig.store.list(`stable/${board}/2.0.0/`)).toEqual([
      `stable/${board}/2.0.0/image.bin`,
      `stable/${board}/2.0.0/image.bin.sig`,
      `stable/${board}/2.0.0/release.json`,
      `stable/${board}/2.0.0/version.txt`,
      `stable/${board}/2.0.0/version.txt.sig`,
    ]);
    expect(rig.origin.requests.filter((r) => r.path.endsWith('/image.bin'))).toHaveLength(1);
    const events = await rig.events();
    expect(events.map((e) => e.event)).toEqual(['release.mirrored']);
  });

  it('gives exactly one release.mirrored when two workers finish the last two artifacts at once', async () => {
    rig = await startRig({ channels: ['stable'] });
    await rig.origin.publishRelease({
      channel: 'stable',
      board,
      version: '3.0.0',
      artifacts: [{ name: 'image.bin', size: MiB }],
    });
    await runPoll(rig.deps, rig.config);
    let arrived = 0;
    let release: () => void = () => undefined;
    const bothVerified = new Promise<void>((resolve) => {
      release = resolve;
    });
    const rendezvous = (deps: MirrorDeps): MirrorDeps => ({
      ...deps,
      ledger: {
        ...deps.ledger,
        async markVerified(...args: Parameters<typeof deps.ledger.markVerified>) {
          const made = await deps.ledger.markVerified(...args);
          arrived++;
          if (arrived === 2) release();
          await bothVerified;
          return made;
        },
      },
    });
    const one = await receiveJobs(rig.jobsQueue, 1);
    const two = await receiveJobs(rig.jobsQueue, 1);
    expect([one.length, two.length]).toEqual([1, 1]);
    const results = await Promise.all([
      deliver(rig.worker(rendezvous), rig.jobsQueue, one),
      deliver(rig.worker(rendezvous), rig.jobsQueue, two),
    ]);
    expect(results.flatMap((r) => r.batchItemFailures)).toEqual([]);
    expect(arrived).toBe(2);
    const events = await rig.events();
    expect(events.map((e) => e.event)).toEqual(['release.mirrored']);
    expect(
      (await rig.ledger.getRelease({ source: 'flatcar', channel: 'stable', board, version: '3.0.0' }))
        ?.finalizedAt,
    ).toBeDefined();
  });

  it('sends one set of jobs when two pollers run at once', async () => {
    rig = await startRig({ channels: ['stable'], artifacts });
    await rig.origin.publishRelease({
      channel: 'stable',
      board,
      version: '4.0.0',
      artifacts: [{ name: 'image.bin', size: 1000 }],
    });
    const [a, b] = await Promise.all([runPoll(rig.deps, rig.config), runPoll(rig.deps, rig.config)]);
    expect([a.results[0]?.outcome, b.results[0]?.outcome].sort()).toEqual(['new-release', 'seen']);
    const received = [
      ...(await receiveJobs(rig.jobsQueue, 10, 1)),
      ...(await receiveJobs(rig.jobsQueue, 10, 0)),
    ];
    expect(received.map((r) => (JSON.parse(r.body) as { artifact: string }).artifact).sort()).toEqual([
      'image.bin',
      'image.bin.DIGESTS',
      'version.txt',
    ]);
  });

  it('keeps the mirror current when upstream current goes backwards', async () => {
    rig = await startRig({ channels: ['stable'] });
    const worker = rig.worker();
    await rig.origin.publishRelease({
      channel: 'stable',
      board,
      version: '5.0.0',
      artifacts: [{ name: 'image.bin', size: 100 }],
      makeCurrent: false,
    });
    await rig.origin.publishRelease({
      channel: 'stable',
      board,
      version: '5.1.0',
      artifacts: [{ name: 'image.bin', size: 100 }],
    });
    await runPoll(rig.deps, rig.config);
    await drain(worker, rig.jobsQueue);
    rig.origin.setCurrent('stable', board, '5.0.0');
    const poll = await runPoll(rig.deps, rig.config);
    expect(poll.results[0]).toMatchObject({ outcome: 'new-release', version: '5.0.0' });
    await drain(worker, rig.jobsQueue);
    expect(await text(rig, `stable/${board}/current/version.txt`)).toContain('_VERSION_ID=5.1.0');
    expect((await rig.ledger.getCurrent({ source: 'flatcar', channel: 'stable', board }))?.version).toBe(
      '5.1.0',
    );
    const mirrored = named(await rig.events(), 'release.mirrored');
    expect(mirrored.map((e) => [e.version, e.detail.currentAdvanced])).toEqual([
      ['5.1.0', true],
      ['5.0.0', false],
    ]);
  });
});
