import { afterEach, describe, expect, it } from 'vitest';
import { faults } from '../../local/sim-origin/sim-origin.ts';
import { TransientError } from '../../shared/errors.ts';
import type { Ledger } from '../../shared/ledger/ledger.ts';
import type { CldistEvent } from '../../shared/messages.ts';
import type { MirrorDeps } from '../../shared/mirror/deps.ts';
import { finalizeIfDone, type ReleaseManifest } from '../../shared/mirror/finalize.ts';
import { runPoll } from '../../shared/mirror/poller.ts';
import { compareVersions } from '../../shared/release/version-file.ts';
import { drain, type MirrorRig, startRig } from './mirror-harness.ts';

const board = 'amd64-usr';
const withOptional = [{ name: 'version.txt' }, { name: 'image.bin' }, { name: 'extra.bin', required: false }];

const lostResponse = () => new TransientError('ledger-unavailable', 'ledger write failed: socket hang up');
const summary = (events: CldistEvent[]) => events.map((e) => `${e.event} ${e.artifact ?? ''}`.trim()).sort();

async function manifest(rig: MirrorRig, version: string): Promise<ReleaseManifest | undefined> {
  const body = await rig.store.get(`stable/${board}/${version}/release.json`);
  return body === undefined ? undefined : (JSON.parse(new TextDecoder().decode(body)) as ReleaseManifest);
}

/** A ledger whose method `name` fails `times` times: after its write landed (`landed`) or before it. */
function failing<K extends keyof Ledger>(name: K, times: number, landed: boolean) {
  let left = times;
  return (deps: MirrorDeps): MirrorDeps => {
    const inner = deps.ledger;
    const method = inner[name] as (...args: unknown[]) => Promise<unknown>;
    const wrapped = async (...args: unknown[]) => {
      if (left <= 0) return method.apply(inner, args);
      left--;
      if (landed) await method.apply(inner, args);
      throw lostResponse();
    };
    return { ...deps, ledger: { ...inner, [name]: wrapped } };
  };
}

describe('release mirror when ledger writes or their answers are lost', () => {
  let rig: MirrorRig | undefined;
  afterEach(async () => {
    await rig?.close();
    rig = undefined;
  });

  it('still sends artifact.missing once when the answer to marking it missing is lost', async () => {
    rig = await startRig({ channels: ['stable'], artifacts: withOptional, visibilityTimeout: 1 });
    await rig.origin.publishRelease({
      channel: 'stable',
      board,
      version: '6.0.0',
      artifacts: [{ name: 'image.bin', size: 1000 }],
    });
    await runPoll(rig.deps, rig.config);
    const report = await drain(rig.worker(failing('markMissing', 1, true)), rig.jobsQueue);
    expect(report.failures).toBe(1);
    expect(summary(await rig.events())).toEqual(['artifact.missing extra.bin', 'release.mirrored']);
    expect(
      await rig.ledger.getArtifact({
        source: 'flatcar',
        channel: 'stable',
        board,
        version: '6.0.0',
        artifact: 'extra.bin',
      }),
    ).toMatchObject({ state: 'missing', alertedAt: expect.any(String) });
    expect((await manifest(rig, '6.0.0'))?.missing).toEqual(['extra.bin']);
    rig.advance((rig.config.schedule.stallAfterMinutes + 1) * 60_000);
    expect((await runPoll(rig.deps, rig.config)).resent).toBe(0);
  });

  it('finalizes past a tampered optional artifact and alerts once though the answer to marking it was lost', async () => {
    rig = await startRig({ channels: ['stable'], artifacts: withOptional, visibilityTimeout: 1 });
    await rig.origin.publishRelease({
      channel: 'stable',
      board,
      version: '7.0.0',
      artifacts: [
        { name: 'image.bin', size: 1000 },
        { name: 'extra.bin', size: 5000 },
      ],
    });
    rig.origin.inject(/\/extra\.bin$/, faults.tamper(100), { times: 10 });
    await runPoll(rig.deps, rig.config);
    await drain(rig.worker(failing('markFailedVerification', 1, true)), rig.jobsQueue);
    const events = await rig.events();
    expect(summary(events)).toEqual(['artifact.verification_failed extra.bin', 'release.mirrored']);
    expect(events.find((e) => e.event === 'artifact.verification_failed')?.detail).toMatchObject({
      reason: 'tampered',
    });
    const written = await manifest(rig, '7.0.0');
    expect(written?.failedVerification).toEqual(['extra.bin']);
    expect(Object.keys(written?.artifacts ?? {}).sort()).toEqual(['image.bin', 'version.txt']);
    expect(await rig.store.list(`stable/${board}/7.0.0/extra`)).toEqual([]);
  });

  it('holds a release with a tampered required artifact', async () => {
    rig = await startRig({ channels: ['stable'], artifacts: withOptional, visibilityTimeout: 1 });
    await rig.origin.publishRelease({
      channel: 'stable',
      board,
      version: '7.1.0',
      artifacts: [
        { name: 'image.bin', size: 1000 },
        { name: 'extra.bin', size: 5000 },
      ],
    });
    rig.origin.inject(/\/image\.bin$/, faults.tamper(100), { times: 10 });
    await runPoll(rig.deps, rig.config);
    await drain(rig.worker(), rig.jobsQueue);
    expect(summary(await rig.events())).toEqual(['artifact.verification_failed image.bin']);
    expect(await manifest(rig, '7.1.0')).toBeUndefined();
  });

  it.each([
    ['completeFinalize is refused', 'completeFinalize', false],
    ['the answer to completeFinalize is lost', 'completeFinalize', true],
    ['recording the announcement is refused twice', 'recordAnnounced', false],
    ['the answer to recording the announcement is lost', 'recordAnnounced', true],
  ] as const)('announces a release once when %s', async (_title, method, landed) => {
    rig = await startRig({ channels: ['stable'], visibilityTimeout: 1 });
    await rig.origin.publishRelease({
      channel: 'stable',
      board,
      version: '8.0.0',
      artifacts: [{ name: 'image.bin', size: 1000 }],
    });
    await runPoll(rig.deps, rig.config);
    await drain(
      rig.worker(failing(method, method === 'recordAnnounced' && !landed ? 2 : 1, landed)),
      rig.jobsQueue,
    );
    expect(summary(await rig.events())).toEqual(['release.mirrored']);
    const release = await rig.ledger.getRelease({
      source: 'flatcar',
      channel: 'stable',
      board,
      version: '8.0.0',
    });
    expect(release).toMatchObject({ finalizedAt: expect.any(String), announcedAt: expect.any(String) });
    expect(release?.announcePending).toBeUndefined();
  });

  it('never moves current/version.txt backwards when two finalizes overlap', async () => {
    rig = await startRig({ channels: ['stable'], visibilityTimeout: 1 });
    const target = `stable/${board}/current/version.txt`;
    for (const version of ['9.0.0', '10.0.0']) {
      await rig.origin.publishRelease({
        channel: 'stable',
        board,
        version,
        artifacts: [{ name: 'image.bin', size: 1000 }],
      });
      await runPoll(rig.deps, rig.config);
    }
    const noFinalize = (deps: MirrorDeps): MirrorDeps => ({
      ...deps,
      ledger: { ...deps.ledger, beginFinalize: async () => undefined },
    });
    expect((await drain(rig.worker(noFinalize), rig.jobsQueue)).failures).toBe(0);

    const bodies = new Map<string, string>();
    for (const version of ['9.0.0', '10.0.0']) {
      const body = await rig.store.get(`stable/${board}/${version}/version.txt`);
      bodies.set(new TextDecoder().decode(body), version);
    }
    const writes: string[] = [];
    let olderWriting: () => void = () => undefined;
    const olderBlocked = new Promise<void>((resolve) => {
      olderWriting = resolve;
    });
    let letOlderWrite: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      letOlderWrite = resolve;
    });
    const writer = (name: string, deps: MirrorDeps): MirrorDeps => ({
      ...deps,
      store: {
        ...deps.store,
        async put(key, body, options) {
          if (key === target && name === 'older') {
            olderWriting();
            await gate;
          }
          await deps.store.put(key, body, options);
          if (key !== target) return;
          writes.push(bodies.get(typeof body === 'string' ? body : new TextDecoder().decode(body)) ?? '?');
          if (name === 'newer') letOlderWrite();
        },
      },
      ledger: {
        ...deps.ledger,
        async acquireCurrentSync(...args) {
          const got = await deps.ledger.acquireCurrentSync(...args);
          if (!got && name === 'newer') letOlderWrite();
          return got;
        },
      },
    });
    const older = finalizeIfDone(
      { source: 'flatcar', channel: 'stable', board, version: '9.0.0' },
      writer('older', rig.deps),
      rig.config,
    );
    await olderBlocked;
    const newer = finalizeIfDone(
      { source: 'flatcar', channel: 'stable', board, version: '10.0.0' },
      writer('newer', rig.deps),
      rig.config,
    );
    const results = await Promise.all([older, newer]);
    expect(results.map((r) => r.finalized)).toEqual([true, true]);

    expect(writes.length).toBeGreaterThan(0);
    for (let i = 1; i < writes.length; i++) {
      expect(
        compareVersions(writes[i] ?? '', writes[i - 1] ?? ''),
        writes.join(' → '),
      ).toBeGreaterThanOrEqual(0);
    }
    expect(writes.at(-1)).toBe('10.0.0');
    const visible = new TextDecoder().decode(await rig.store.get(target));
    expect(bodies.get(visible)).toBe('10.0.0');
    expect((await rig.ledger.getCurrent({ source: 'flatcar', channel: 'stable', board }))?.version).toBe(
      '10.0.0',
    );
  });

  it('finalizes through the poller sweep a release whose finalizer failed and could not give the lease back', async () => {
    rig = await startRig({ channels: ['stable'], visibilityTimeout: 1 });
    await rig.origin.publishRelease({
      channel: 'stable',
      board,
      version: '7.0.0',
      artifacts: [{ name: 'image.bin', size: 1000 }],
    });
    await runPoll(rig.deps, rig.config);
    const stranding = (deps: MirrorDeps): MirrorDeps => ({
      ...deps,
      ledger: {
        ...deps.ledger,
        advanceCurrent: async () => {
          throw lostResponse();
        },
        abandonFinalize: async () => {
          throw lostResponse();
        },
      },
    });
    const report = await drain(rig.worker(stranding), rig.jobsQueue);
    expect(report.failures).toBeGreaterThan(0);
    const ref = { source: 'flatcar', channel: 'stable', board, version: '7.0.0' };
    expect(await rig.ledger.getRelease(ref)).toMatchObject({ finalizeLeaseUntil: expect.any(String) });
    expect((await rig.ledger.getRelease(ref))?.announcedAt).toBeUndefined();
    expect(summary(await rig.events())).not.toContain('release.mirrored');

    expect((await runPoll(rig.deps, rig.config)).refinalized).toBe(0);
    rig.advance((rig.config.schedule.stallAfterMinutes + 1) * 60_000);
    const swept = await runPoll(rig.deps, rig.config);
    expect(swept.refinalized).toBe(1);
    expect(summary(await rig.events())).toEqual(['release.mirrored']);
    expect(new TextDecoder().decode(await rig.store.get(`stable/${board}/current/version.txt`))).toContain(
      '7.0.0',
    );
    expect((await runPoll(rig.deps, rig.config)).refinalized).toBe(0);
    expect(summary(await rig.events())).toEqual(['release.mirrored']);
  });
});
