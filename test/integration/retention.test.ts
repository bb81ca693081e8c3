import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildStatus } from '../../local/status/model.ts';
import { createReleaseRoutes } from '../../shared/api/release-routes.ts';
import { parseConfig } from '../../shared/config.ts';
import { TransientError } from '../../shared/errors.ts';
import { releasePrunedSchema } from '../../shared/events.ts';
import type { Ledger, ReleaseRef } from '../../shared/ledger/ledger.ts';
import type { CldistEvent } from '../../shared/messages.ts';
import type { MirrorDeps } from '../../shared/mirror/deps.ts';
import { runPoll } from '../../shared/mirror/poller.ts';
import {
  listReleaseSummaries,
  ReleaseNotFoundError,
  retryRelease,
} from '../../shared/mirror/release-admin.ts';
import { storeKey } from '../../shared/release/layout.ts';
import type { PinnedReleases } from '../../shared/retention/pinned.ts';
import { pruneLeaseSeconds, pruneReleases, releaseFolder } from '../../shared/retention/prune.ts';
import { keepReleasesFor, retainAfterAnnounce, runRetention } from '../../shared/retention/run.ts';
import type { ObjectStore } from '../../shared/store/types.ts';
import { facts, plans } from '../support/ledger-fixtures.ts';
import { drain, type MirrorRig, startRig } from './mirror-harness.ts';

const board = 'amd64-usr';
const stream = { source: 'flatcar', channel: 'stable', board };
const at = (version: string): ReleaseRef => ({ ...stream, version });
/** What the mirror stores of a release: each artifact and its signature, then the manifest. */
const files = [...plans.flatMap((plan) => [plan.name, `${plan.name}.sig`]), 'release.json'];

/** What retention needs besides the mirror's deps: the sources, for each release's folder. */
const pruneDepsOf = (rig: MirrorRig) => ({ ...rig.deps, mirrorSources: rig.config.sources });

/** A release as the mirror leaves it once announced: its records in the ledger, its objects in the store. */
async function seedMirrored(rig: MirrorRig, release: ReleaseRef, options: { current?: boolean } = {}) {
  expect(await rig.ledger.claimRelease(release, plans)).toBe(true);
  for (const plan of plans) await rig.ledger.markVerified({ ...release, artifact: plan.name }, facts);
  expect(await rig.ledger.beginFinalize(release, 60)).toBeDefined();
  expect(await rig.ledger.completeFinalize(release)).toBe(true);
  expect(await rig.ledger.recordAnnounced(release)).toBe(true);
  for (const file of files) {
    await rig.store.put(storeKey('', release.channel, release.board, release.version, file), `${file}\n`);
  }
  if (options.current === true) expect(await rig.ledger.advanceCurrent(release)).toBe(true);
}

/** The versions with at least one object in the store, per `channel/board/` (not `current/`). */
async function storedVersions(store: ObjectStore, prefix = 'stable/amd64-usr/'): Promise<string[]> {
  const keys = await store.list(prefix);
  const folders = new Set(keys.map((key) => key.slice(prefix.length).split('/')[0] ?? ''));
  folders.delete('current');
  return [...folders].sort();
}

async function listedVersions(ledger: Ledger, channel = 'stable', onBoard = board): Promise<string[]> {
  return (await ledger.listReleases({ source: 'flatcar', channel, board: onBoard })).map((r) => r.version);
}

function pruned(events: CldistEvent[]): CldistEvent[] {
  return events.filter((event) => event.event === 'release.pruned');
}

/** A store whose deletes fail after `allowed` of them succeeded, as S3 or a disk might mid-prune. */
function failingDeletes(store: ObjectStore, allowed: number): ObjectStore & { deleted: string[] } {
  const deleted: string[] = [];
  return {
    ...store,
    deleted,
    async delete(key) {
      if (deleted.length >= allowed) {
        throw new TransientError('store-unavailable', `injected: delete of ${key} failed`);
      }
      await store.delete(key);
      deleted.push(key);
    },
  };
}

const pinnedOnly = (...versions: string[]): PinnedReleases => ({
  isPinned: async (on, version) =>
    on.channel === 'stable' && on.board === board && versions.includes(version),
});

describe.each(['local', 's3'] as const)('retention against dynalite and the %s store', (storeKind) => {
  let rig: MirrorRig;

  beforeEach(async () => {
    rig = await startRig({ channels: ['stable'], store: storeKind, keepReleases: 2 });
  });

  afterEach(async () => {
    await rig?.close();
  });

  it('keeps the newest mirrored releases, never the current or a pinned one, and announces each deletion', async () => {
    for (const version of ['1.0.0', '1.2.0', '1.3.0', '1.4.0', '1.5.0']) await seedMirrored(rig, at(version));
    // The current release can be older than the kept ones: newer releases without a verified version.txt.
    await seedMirrored(rig, at('1.1.0'), { current: true });
    await rig.ledger.claimRelease(at('0.5.0'), plans);
    await rig.store.put(storeKey('', 'stable', board, '0.5.0', 'image.bin'), 'in progress');
    await seedMirrored(rig, { source: 'flatcar', channel: 'stable', board: 'arm64-usr', version: '1.0.0' });

    const report = await pruneReleases(
      { stream, keep: 2 },
      { ...pruneDepsOf(rig), pinned: pinnedOnly('1.2.0') },
    );

    expect(report.pruned).toEqual(['1.0.0', '1.3.0']);
    expect(report.spared).toEqual([
      { version: '1.1.0', why: 'current' },
      { version: '1.2.0', why: 'pinned' },
    ]);
    expect(await storedVersions(rig.store)).toEqual(['0.5.0', '1.1.0', '1.2.0', '1.4.0', '1.5.0']);
    expect(await rig.store.list(releaseFolder(at('1.4.0'), rig.config.sources))).toHaveLength(files.length);
    expect(await listedVersions(rig.ledger)).toEqual(['0.5.0', '1.1.0', '1.2.0', '1.4.0', '1.5.0']);
    expect(await rig.ledger.getRelease(at('1.0.0'))).toBeUndefined();
    expect(await rig.ledger.getArtifact({ ...at('1.3.0'), artifact: 'image.bin' })).toBeUndefined();
    expect(await storedVersions(rig.store, 'stable/arm64-usr/')).toEqual(['1.0.0']);
    expect((await rig.ledger.getCurrent(stream))?.version).toBe('1.1.0');

    const events = pruned(await rig.events());
    expect(events.map((event) => event.version).sort()).toEqual(['1.0.0', '1.3.0']);
    for (const event of events) {
      const parsed = releasePrunedSchema.parse(event);
      expect(parsed.detail).toMatchObject({ reason: 'retention', keepReleases: 2 });
      expect(parsed.detail.storePrefix).toBe(`stable/${board}/${event.version}/`);
    }
  });

  it('finishes, on the next run, a prune that failed half-way, hiding the release meanwhile and announcing it once', async () => {
    await seedMirrored(rig, at('1.0.0'));
    await seedMirrored(rig, at('1.1.0'), { current: true });
    const store = failingDeletes(rig.store, 3);

    await expect(pruneReleases({ stream, keep: 1 }, { ...pruneDepsOf(rig), store })).rejects.toThrow(
      /injected: delete/,
    );

    expect(store.deleted).toEqual(
      ['release.json', 'version.txt', 'version.txt.sig'].map((file) =>
        storeKey('', 'stable', board, '1.0.0', file),
      ),
    );
    expect(await rig.store.list(releaseFolder(at('1.0.0'), rig.config.sources))).toHaveLength(
      files.length - 3,
    );
    expect(pruned(await rig.events())).toEqual([]);
    // Half-deleted: in no listing, never shown as mirrored, not retried.
    expect(await listedVersions(rig.ledger)).toEqual(['1.1.0']);
    const admin = { ledger: rig.ledger };
    expect((await listReleaseSummaries({}, admin)).map((r) => [r.version, r.state])).toEqual([
      ['1.1.0', 'mirrored'],
    ]);
    expect((await listReleaseSummaries({ state: 'mirrored' }, admin)).map((r) => r.version)).toEqual([
      '1.1.0',
    ]);
    expect(
      (await listReleaseSummaries({ state: 'pruning' }, admin)).map((r) => [r.version, r.state]),
    ).toEqual([['1.0.0', 'pruning']]);
    await expect(
      retryRelease(at('1.0.0'), { confirmFinal: true }, { ...admin, jobs: rig.deps.jobs }, rig.config),
    ).rejects.toThrow(ReleaseNotFoundError);
    const routes = createReleaseRoutes({ ...admin, jobs: rig.deps.jobs }, rig.config, async (_c, next) => {
      await next();
    });
    const listed = async (query: string) =>
      (
        (await (await routes.request(`/v1/releases${query}`)).json()) as { releases: ReleaseRef[] }
      ).releases.map((r) => r.version);
    expect(await listed('')).toEqual(['1.1.0']);
    expect(await listed('?state=pruning')).toEqual(['1.0.0']);
    const retry = await routes.request('/v1/releases/flatcar/stable/amd64-usr/1.0.0/retry', {
      method: 'POST',
    });
    expect(retry.status).toBe(404);
    expect(await retry.text()).toMatch(/being deleted by retention/);
    const status = await buildStatus({
      ledger: rig.ledger,
      mirrorSources: rig.config.sources,
      keyring: () => undefined,
      keyWarningDays: 30,
      recentEvents: () => [],
      pollProblem: () => undefined,
      worker: () => ({ inFlight: 0, concurrency: 1 }),
      demo: false,
      mirrorBaseUrl: 'http://127.0.0.1/mirror/',
    });
    expect(status.channels.flatMap((c) => c.releases.map((r) => [r.version, r.state]))).toEqual([
      ['1.1.0', 'mirrored'],
    ]);

    expect(await runRetention(rig.deps, rig.config)).toEqual({ pruned: 1, failures: 0 });

    expect(await storedVersions(rig.store)).toEqual(['1.1.0']);
    expect(await rig.ledger.getRelease(at('1.0.0'))).toBeUndefined();
    expect(await rig.ledger.listPruning()).toEqual([]);
    const events = pruned(await rig.events());
    expect(events.map((event) => event.version)).toEqual(['1.0.0']);
    expect(releasePrunedSchema.parse(events[0]).detail.keepReleases).toBe(1);
  });

  it('finishes a prune whose ledger failed after the objects were gone, announcing it once', async () => {
    await seedMirrored(rig, at('1.0.0'));
    await seedMirrored(rig, at('1.1.0'), { current: true });
    const flaky: MirrorDeps = {
      ...pruneDepsOf(rig),
      ledger: {
        ...rig.ledger,
        deletePrunedArtifacts: () =>
          Promise.reject(new TransientError('ledger-unavailable', 'injected: ledger delete failed')),
      },
    };
    await expect(
      pruneReleases({ stream, keep: 1 }, { ...flaky, mirrorSources: rig.config.sources }),
    ).rejects.toThrow(/injected: ledger/);
    expect(await rig.store.list(releaseFolder(at('1.0.0'), rig.config.sources))).toEqual([]);
    expect((await rig.ledger.getRelease(at('1.0.0')))?.artifactStates).toHaveLength(plans.length);
    expect(pruned(await rig.events())).toEqual([]);

    expect((await pruneReleases({ stream, keep: 1 }, pruneDepsOf(rig))).pruned).toEqual(['1.0.0']);
    expect(await rig.ledger.getRelease(at('1.0.0'))).toBeUndefined();
    expect(pruned(await rig.events()).map((event) => event.version)).toEqual(['1.0.0']);
  });

  it('leaves a prune whose run died holding it until the lease runs out, then finishes it', async () => {
    await seedMirrored(rig, at('1.0.0'));
    await seedMirrored(rig, at('1.1.0'), { current: true });
    // A process that dies gives nothing back: its prune lease stays taken.
    const dead: MirrorDeps = {
      ...pruneDepsOf(rig),
      store: failingDeletes(rig.store, 1),
      ledger: { ...rig.ledger, releasePrune: async () => {} },
    };
    await expect(
      pruneReleases({ stream, keep: 1 }, { ...dead, mirrorSources: rig.config.sources }),
    ).rejects.toThrow(/injected/);

    expect(await pruneReleases({ stream, keep: 1 }, pruneDepsOf(rig))).toEqual({ pruned: [], spared: [] });
    expect(await rig.store.list(releaseFolder(at('1.0.0'), rig.config.sources))).toHaveLength(
      files.length - 1,
    );

    rig.advance((pruneLeaseSeconds + 1) * 1000);
    expect(await runRetention(rig.deps, rig.config)).toEqual({ pruned: 1, failures: 0 });
    expect(await storedVersions(rig.store)).toEqual(['1.1.0']);
    expect(pruned(await rig.events()).map((event) => event.version)).toEqual(['1.0.0']);
  });

  it('never throws from the poll or after an announcement: it logs, and the poll report counts failures', async () => {
    await seedMirrored(rig, at('1.0.0'));
    await seedMirrored(rig, at('1.1.0'));
    await seedMirrored(rig, at('1.2.0'), { current: true });
    const errors: string[] = [];
    const failing: MirrorDeps = {
      ...pruneDepsOf(rig),
      store: failingDeletes(rig.store, 0),
      logger: { ...rig.deps.logger, error: (message) => errors.push(message) },
    };
    expect(await retainAfterAnnounce(at('1.2.0'), failing, rig.config)).toEqual([]);
    const report = await runPoll(failing, rig.config);
    expect([report.pruned, report.pruneFailures]).toEqual([0, 2]);
    expect(errors).toEqual(['retention.prune_failed', 'retention.prune_failed', 'retention.prune_failed']);
    expect(await runRetention(rig.deps, rig.config)).toEqual({ pruned: 1, failures: 0 });
    expect(await storedVersions(rig.store)).toEqual(['1.1.0', '1.2.0']);
  });

  it('changes nothing and announces nothing when run again', async () => {
    for (const version of ['1.0.0', '1.1.0', '1.2.0']) await seedMirrored(rig, at(version));
    await rig.ledger.advanceCurrent(at('1.2.0'));
    expect((await pruneReleases({ stream, keep: 1 }, pruneDepsOf(rig))).pruned).toEqual(['1.0.0', '1.1.0']);
    expect(await pruneReleases({ stream, keep: 1 }, pruneDepsOf(rig))).toEqual({ pruned: [], spared: [] });
    expect(
      await runRetention(rig.deps, {
        ...rig.config,
        sources: rig.config.sources.map((source) => ({ ...source, keepReleases: 1 })),
      }),
    ).toEqual({ pruned: 0, failures: 0 });
    expect(await storedVersions(rig.store)).toEqual(['1.2.0']);
    expect(
      pruned(await rig.events())
        .map((event) => event.version)
        .sort(),
    ).toEqual(['1.0.0', '1.1.0']);
  });
});

describe('retention settings', () => {
  it('is off by default: nothing is pruned however many releases are mirrored', async () => {
    const rig = await startRig({ channels: ['stable'] });
    try {
      for (const version of ['1.0.0', '1.1.0', '1.2.0']) await seedMirrored(rig, at(version));
      expect(keepReleasesFor(rig.config, stream)).toBeUndefined();
      expect(await retainAfterAnnounce(at('1.2.0'), rig.deps, rig.config)).toEqual([]);
      expect(await runRetention(rig.deps, rig.config)).toEqual({ pruned: 0, failures: 0 });
      expect(await storedVersions(rig.store)).toEqual(['1.0.0', '1.1.0', '1.2.0']);
      expect(await listedVersions(rig.ledger)).toEqual(['1.0.0', '1.1.0', '1.2.0']);
      expect(pruned(await rig.events())).toEqual([]);
    } finally {
      await rig.close();
    }
  });

  it('refuses a keepReleases that is not a whole number of at least 1, naming the field', () => {
    for (const keepReleases of [0, -1, 1.5, '5', null]) {
      expect(() => parseConfig({ channels: [{ name: 'stable', keepReleases }] })).toThrow(
        /channels.*0.*keepReleases/,
      );
    }
    expect(keepReleasesFor(parseConfig({ channels: [{ name: 'stable', keepReleases: 5 }] }), stream)).toBe(5);
  });
});

describe('retention in the mirror pipeline (poller, worker, SNS)', () => {
  it('prunes the older release once the newer one is announced, in the worker that announced it', async () => {
    const rig = await startRig({ channels: ['stable'], keepReleases: 1, store: 's3' });
    try {
      for (const version of ['30.0.0', '30.1.0']) {
        await rig.origin.publishRelease({
          channel: 'stable',
          board,
          version,
          artifacts: [{ name: 'image.bin', size: 1000 }],
        });
        const report = await runPoll(rig.deps, rig.config);
        expect(report.pruned).toBe(0);
        await drain(rig.worker(), rig.jobsQueue);
      }
      expect(await storedVersions(rig.store)).toEqual(['30.1.0']);
      expect(new TextDecoder().decode(await rig.store.get(`stable/${board}/current/version.txt`))).toMatch(
        /VERSION=30\.1\.0/,
      );
      expect(await listedVersions(rig.ledger)).toEqual(['30.1.0']);
      const events = await rig.events();
      const order = events
        .filter((event) => event.event === 'release.mirrored' || event.event === 'release.pruned')
        .map((event) => `${event.event} ${event.version}`);
      expect(order).toEqual(['release.mirrored 30.0.0', 'release.mirrored 30.1.0', 'release.pruned 30.0.0']);
      expect((await runPoll(rig.deps, rig.config)).pruned).toBe(0);
    } finally {
      await rig.close();
    }
  });
});
