import type { SourceConfig } from '../config-sources.ts';
import { PermanentError } from '../errors.ts';
import type { Ledger, ReleaseRecord, ReleaseRef } from '../ledger/ledger.ts';
import type { CldistEvent } from '../messages.ts';
import { recordAfterPublish } from '../notify/record-after-publish.ts';
import { releaseStoreKey } from '../release/layout.ts';
import { compareVersions } from '../release/version-file.ts';
import type { ObjectStore } from '../store/types.ts';
import { noPinnedReleases, type PinnedReleases, type ReleaseStream } from './pinned.ts';

/** Long enough to delete one release's objects and records; a run that dies holding it delays a retry this long. */
export const pruneLeaseSeconds = 5 * 60;

type LogMethod = (message: string, ...attributes: Record<string, unknown>[]) => void;

/** What retention touches: the mirror's deps (`MirrorDeps`) and the configured sources, for mirror paths. */
export interface PruneDeps {
  mirrorSources: SourceConfig[];
  ledger: Pick<
    Ledger,
    | 'listReleases'
    | 'getCurrent'
    | 'markPruning'
    | 'claimPrune'
    | 'releasePrune'
    | 'listPruning'
    | 'deletePrunedArtifacts'
    | 'forgetPrunedRelease'
  >;
  store: Pick<ObjectStore, 'list' | 'delete'>;
  notifier: { publish(event: CldistEvent): Promise<void> };
  clock: () => Date;
  logger: { info: LogMethod; warn: LogMethod; error: LogMethod };
  /** Absent: nothing is pinned. */
  pinned?: PinnedReleases;
}

export interface PruneInput {
  stream: ReleaseStream;
  /** How many of the stream's newest mirrored releases to keep; every older one is pruned. */
  keep: number;
}

export interface PruneReport {
  /** Versions whose prune this call finished: ones left by an earlier run first, then newly condemned ones. */
  pruned: string[];
  /** Versions older than the newest `keep` that stay: the mirror's current release, or a pinned one. */
  spared: { version: string; why: 'current' | 'pinned' }[];
}

const manifestName = 'release.json';
/**
 * Deleted first, in this order: the manifest that says the release is complete, then the version file a
 * reader starts from. Only then the artifacts, so a reader never finds a release that claims to be whole.
 */
const firstToGo = [manifestName, 'version.txt', 'version.txt.sig'];

function refOf(release: ReleaseRef): ReleaseRef {
  return { source: release.source, channel: release.channel, board: release.board, version: release.version };
}

/** A release record as the pruning mark leaves it. */
interface MarkedRelease extends ReleaseRef {
  pruningSince: string;
  pruneKeep: number;
}

function markedOf(record: ReleaseRecord): MarkedRelease {
  if (record.pruningSince === undefined || record.pruneKeep === undefined) {
    const id = `${record.source}/${record.channel}/${record.board}/${record.version}`;
    throw new PermanentError('not-marked', `release ${id} is not marked for pruning; nothing was deleted`);
  }
  return { ...refOf(record), pruningSince: record.pruningSince, pruneKeep: record.pruneKeep };
}

/** The release's folder in the store, ending in "/": the same layout every writer uses. */
export function releaseFolder(release: ReleaseRef, sources: SourceConfig[]): string {
  const manifest = releaseStoreKey(sources, release, manifestName);
  return manifest.slice(0, -manifestName.length);
}

/**
 * Deletes a marked release whose prune lease the caller holds: its objects (`firstToGo` first), its
 * artifact records, then announces `release.pruned` and forgets the release record, which held the mark.
 * Every step is idempotent, so a run that dies anywhere leaves the mark for a later run to finish.
 */
async function finishPrune(record: MarkedRelease, deps: PruneDeps): Promise<void> {
  const ref = refOf(record);
  const folder = releaseFolder(ref, deps.mirrorSources);
  const keys = await deps.store.list(folder);
  const first = firstToGo.map((name) => `${folder}${name}`).filter((key) => keys.includes(key));
  for (const key of [...first, ...keys.filter((key) => !first.includes(key))]) {
    await deps.store.delete(key);
  }
  await deps.ledger.deletePrunedArtifacts(ref);
  await deps.notifier.publish({
    event: 'release.pruned',
    ...ref,
    at: deps.clock().toISOString(),
    detail: {
      reason: 'retention',
      keepReleases: record.pruneKeep,
      pruningSince: record.pruningSince,
      storePrefix: folder,
    },
  });
  await recordAfterPublish('release.pruned', { ...ref }, deps, () => deps.ledger.forgetPrunedRelease(ref));
  deps.logger.info('release.pruned', { ...ref, objects: keys.length, keepReleases: record.pruneKeep });
}

/** Finishes a prune under its lease; a failure gives the lease back and is rethrown. */
async function finishUnderLease(record: ReleaseRecord, deps: PruneDeps): Promise<void> {
  try {
    await finishPrune(markedOf(record), deps);
  } catch (error) {
    await deps.ledger.releasePrune(refOf(record)).catch(() => undefined);
    throw error;
  }
}

/**
 * Finishes every prune of the stream that an earlier run left (its lease given back or run out); a prune
 * another run is finishing now is left to it. Returns the versions finished here.
 */
export async function finishPendingPrunes(
  stream: ReleaseStream | undefined,
  deps: PruneDeps,
): Promise<string[]> {
  const pending = await deps.ledger.listPruning(stream ?? {});
  const finished: string[] = [];
  for (const listed of pending) {
    const record = await deps.ledger.claimPrune(refOf(listed), pruneLeaseSeconds);
    if (record === undefined) continue;
    deps.logger.warn('retention.prune_resumed', { ...refOf(record), pruningSince: record.pruningSince });
    await finishUnderLease(record, deps);
    finished.push(record.version);
  }
  return finished;
}

/**
 * Retention of one stream: keeps its `keep` newest mirrored (announced) releases and deletes every older
 * one from the store and the ledger, announcing each with `release.pruned`. The mirror's current release
 * and any release the `pinned` port names are never deleted; releases not yet announced (in progress,
 * failed, awaiting trust) are not counted and not touched. Prunes an earlier run left half-done are
 * finished first. Safe to run concurrently and repeatedly: each release is marked by one conditional write
 * before anything of it is deleted.
 */
export async function pruneReleases(input: PruneInput, deps: PruneDeps): Promise<PruneReport> {
  const { stream, keep } = input;
  const report: PruneReport = { pruned: await finishPendingPrunes(stream, deps), spared: [] };
  const listed = await deps.ledger.listReleases(stream);
  const mirrored = listed.filter((r) => r.announcedAt !== undefined && r.pruningSince === undefined);
  const older = mirrored.slice(0, Math.max(0, mirrored.length - keep));
  if (older.length === 0) return report;
  const current = (await deps.ledger.getCurrent(stream))?.version;
  const pinned = deps.pinned ?? noPinnedReleases;
  for (const release of older) {
    if (current !== undefined && compareVersions(release.version, current) === 0) {
      report.spared.push({ version: release.version, why: 'current' });
      continue;
    }
    if (await pinned.isPinned(stream, release.version)) {
      report.spared.push({ version: release.version, why: 'pinned' });
      continue;
    }
    const marked = await deps.ledger.markPruning(refOf(release), keep, pruneLeaseSeconds);
    if (marked === undefined) continue;
    await finishUnderLease(marked, deps);
    report.pruned.push(release.version);
  }
  return report;
}
