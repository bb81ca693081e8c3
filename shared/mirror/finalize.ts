import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { CldistConfig } from '../config.ts';
import { describeError, TransientError } from '../errors.ts';
import type {
  ArtifactRecord,
  ReleaseDetail,
  ReleaseRef,
  StreamRef,
  VerifiedArtifactFacts,
} from '../ledger/ledger.ts';
import { recordAfterPublish } from '../notify/record-after-publish.ts';
import { parseDigests } from '../release/digests.ts';
import { currentStoreKey, sourceNamed, storeKey } from '../release/layout.ts';
import { retainAfterAnnounce } from '../retention/run.ts';
import { alertOnce } from './alerts.ts';
import { defaultLeaseSeconds, type MirrorDeps } from './deps.ts';

const versionFileName = 'version.txt';
/** Long enough for two small puts; a holder that dies blocks `current/` writes for this long at most. */
const currentSyncLeaseSeconds = 30;
/** Waits before the next try for the `current/` lease: about 3 s in all, then the holder is trusted. */
const currentSyncBackoffMs = [25, 50, 100, 200, 400, 800, 1600];
const maxCurrentSyncRounds = 5;
/** Waits before re-recording the announcement: about 6 s in all, to ride out a short ledger outage. */

/** The per-release manifest, written before `current/` moves so subscribers can check every byte. */
export interface ReleaseManifest {
  source: string;
  channel: string;
  board: string;
  version: string;
  finalizedAt: string;
  artifacts: Record<string, VerifiedArtifactFacts>;
  /** Optional artifacts the upstream release did not ship. */
  missing: string[];
  /** Optional artifacts that failed verification: absent from the mirror, and alerted. */
  failedVerification: string[];
}

export interface FinalizeResult {
  finalized: boolean;
  /** The mirror's `current/version.txt` now names this release. */
  currentAdvanced?: boolean;
  /** Artifacts whose SHA-512 disagreed with the release's own `.DIGESTS`. */
  digestMismatches?: string[];
}

function manifestFor(detail: ReleaseDetail, finalizedAt: string): ReleaseManifest {
  const manifest: ReleaseManifest = {
    source: detail.source,
    channel: detail.channel,
    board: detail.board,
    version: detail.version,
    finalizedAt,
    artifacts: {},
    missing: [],
    failedVerification: [],
  };
  for (const record of detail.artifactStates) {
    if (record.state === 'missing') {
      manifest.missing.push(record.artifact);
      continue;
    }
    if (record.state !== 'verified') {
      if (record.state === 'failed_verification') manifest.failedVerification.push(record.artifact);
      continue;
    }
    manifest.artifacts[record.artifact] = {
      size: record.size ?? 0,
      sha512: record.sha512 ?? '',
      signingKeyFingerprint: record.signingKeyFingerprint ?? '',
      primaryKeyFingerprint: record.primaryKeyFingerprint ?? '',
      signatureCreated: record.signatureCreated ?? '',
      hashAlgorithm: record.hashAlgorithm ?? '',
    };
  }
  return manifest;
}

/** Every verified `X.DIGESTS` is read back from the store and its SHA512 lines held against our hashes. */
async function findDigestMismatches(
  detail: ReleaseDetail,
  mirrorPath: string,
  deps: MirrorDeps,
): Promise<ArtifactRecord[]> {
  const verified = new Map(
    detail.artifactStates.filter((a) => a.state === 'verified').map((a) => [a.artifact, a] as const),
  );
  const mismatches = new Map<string, ArtifactRecord>();
  for (const digestsName of verified.keys()) {
    if (!digestsName.endsWith('.DIGESTS')) continue;
    const body = await deps.store.get(
      storeKey(mirrorPath, detail.channel, detail.board, detail.version, digestsName),
    );
    if (body === undefined) continue;
    const listed = parseDigests(new TextDecoder().decode(body));
    for (const [name, sha512] of listed) {
      const record = verified.get(name);
      if (record !== undefined && record.sha512 !== sha512) mismatches.set(name, record);
    }
  }
  return [...mismatches.values()];
}

async function refuseMismatches(
  detail: ReleaseDetail,
  mismatches: ArtifactRecord[],
  mirrorPath: string,
  deps: MirrorDeps,
) {
  for (const record of mismatches) {
    const key = storeKey(mirrorPath, detail.channel, detail.board, detail.version, record.artifact);
    await deps.store.delete(key);
    await deps.store.delete(`${key}.sig`);
    const message = 'sha512 differs from the release DIGESTS';
    await deps.ledger.markFailedVerification(record, `digests-mismatch: ${message}`);
    const sent = await alertOnce(
      record,
      'failed_verification',
      () => ({
        event: 'artifact.verification_failed',
        source: detail.source,
        channel: detail.channel,
        board: detail.board,
        version: detail.version,
        artifact: record.artifact,
        at: deps.clock().toISOString(),
        detail: { reason: 'digests-mismatch', message, sha512: record.sha512 },
      }),
      deps,
    );
    if (sent) deps.logger.error('artifact.digest_mismatch', { ...record });
  }
}

async function copyVersionFile(from: ReleaseRef, mirrorPath: string, deps: MirrorDeps): Promise<void> {
  const source = storeKey(mirrorPath, from.channel, from.board, from.version, versionFileName);
  const target = currentStoreKey(mirrorPath, from.channel, from.board);
  const [body, signature, present] = await Promise.all([
    deps.store.get(source),
    deps.store.get(`${source}.sig`),
    deps.store.get(target),
  ]);
  if (body === undefined) {
    throw new TransientError('current-source-absent', `${source} is not in the store; current/ not written`);
  }
  if (present !== undefined && Buffer.from(present).equals(Buffer.from(body))) return;
  if (signature !== undefined) await deps.store.put(`${target}.sig`, signature);
  await deps.store.put(target, body, { contentType: 'text/plain' });
}

async function acquireCurrentSync(ref: ReleaseRef, holder: string, deps: MirrorDeps): Promise<boolean> {
  for (const wait of [...currentSyncBackoffMs, undefined]) {
    if (await deps.ledger.acquireCurrentSync(streamOf(ref), holder, currentSyncLeaseSeconds)) {
      return true;
    }
    if (wait !== undefined) await delay(wait);
  }
  return false;
}

/**
 * Makes the store's `current/` files name the ledger's current version. Writes are serialised by a short
 * lease per channel and board, and each holder writes the version the ledger names while it holds the lease,
 * so the visible file only moves forward. After giving the lease back the holder reads the ledger again and
 * repeats if it moved: a finalize that could not get the lease relies on that re-read to publish its newer
 * version. If a holder dies while holding the lease, `current/` lags until the next finalize of the channel.
 */
async function syncCurrentFiles(
  ref: ReleaseRef,
  mirrorPath: string,
  deps: MirrorDeps,
): Promise<string | undefined> {
  const holder = randomUUID();
  let written: string | undefined;
  for (let round = 0; round < maxCurrentSyncRounds; round++) {
    if (!(await acquireCurrentSync(ref, holder, deps))) {
      deps.logger.info('finalize.current_contended', {
        ...refOf(ref),
      });
      return undefined;
    }
    try {
      const current = await deps.ledger.getCurrent(streamOf(ref));
      if (current === undefined) return undefined;
      await copyVersionFile({ ...streamOf(ref), version: current.version }, mirrorPath, deps);
      written = current.version;
    } finally {
      await deps.ledger.releaseCurrentSync(streamOf(ref), holder);
    }
    if ((await deps.ledger.getCurrent(streamOf(ref)))?.version === written) return written;
  }
  return written;
}

/**
 * Moves the mirror's `current/` forward: the ledger decides the winner, and the store follows the ledger.
 * True if this release became current, also when an earlier attempt of this finalize moved the ledger.
 */
async function advanceCurrent(detail: ReleaseDetail, mirrorPath: string, deps: MirrorDeps): Promise<boolean> {
  const versionFile = detail.artifactStates.find((a) => a.artifact === versionFileName);
  if (versionFile?.state !== 'verified') {
    deps.logger.warn('finalize.no_version_file', { ...refOf(detail) });
    return false;
  }
  const moved = await deps.ledger.advanceCurrent(detail);
  const written = await syncCurrentFiles(detail, mirrorPath, deps);
  return moved || written === detail.version;
}

async function recordAnnounced(ref: ReleaseRef, deps: MirrorDeps): Promise<void> {
  const recorded = await recordAfterPublish('release.mirrored', { ...ref }, deps, () =>
    deps.ledger.recordAnnounced(ref),
  );
  if (!recorded) deps.logger.warn('finalize.recorded_twice', { ...ref });
}

function refOf(release: ReleaseRef): ReleaseRef {
  return { ...streamOf(release), version: release.version };
}

function streamOf(release: StreamRef): StreamRef {
  return { source: release.source, channel: release.channel, board: release.board };
}

/**
 * Finalize a release once every required artifact is verified and every optional one is done: the ledger
 * hands the finalize to one caller. Order matters for readers: release.json, then `current/`, then
 * `finalizedAt` (the work is done, the announcement owed), then `release.mirrored`, then `announcedAt`. A
 * failure before `finalizedAt` hands the finalize back and the retried job redoes it; a failure after it
 * leaves only the announcement to a retry. Once announced, retention may prune the stream's older releases
 * (`keepReleases`). `release.mirrored` goes out twice only if the process dies, or the
 * ledger stays unreachable for several seconds, between the publish and the `announcedAt` write.
 */
export async function finalizeIfDone(
  release: ReleaseRef,
  deps: MirrorDeps,
  config: CldistConfig,
): Promise<FinalizeResult> {
  const ref = refOf(release);
  const { mirrorPath } = sourceNamed(config.sources, ref.source);
  const detail = await deps.ledger.beginFinalize(ref, deps.leaseSeconds ?? defaultLeaseSeconds);
  if (detail === undefined) return { finalized: false };
  let finalizedAt = detail.finalizedAt;
  let currentAdvanced: boolean;
  try {
    if (finalizedAt === undefined) {
      const mismatches = await findDigestMismatches(detail, mirrorPath, deps);
      if (mismatches.length > 0) {
        await refuseMismatches(detail, mismatches, mirrorPath, deps);
        await deps.ledger.abandonFinalize(ref);
        const retried = await finalizeIfDone(release, deps, config);
        return { ...retried, digestMismatches: mismatches.map((m) => m.artifact) };
      }
      finalizedAt = deps.clock().toISOString();
      const manifest = manifestFor(detail, finalizedAt);
      await deps.store.put(
        storeKey(mirrorPath, ref.channel, ref.board, ref.version, 'release.json'),
        `${JSON.stringify(manifest, null, 2)}\n`,
        { contentType: 'application/json' },
      );
      currentAdvanced = await advanceCurrent(detail, mirrorPath, deps);
      if (!(await deps.ledger.completeFinalize(ref))) {
        deps.logger.warn('finalize.lost_race', { ...ref });
        return { finalized: false };
      }
    } else {
      currentAdvanced = (await deps.ledger.getCurrent(streamOf(ref)))?.version === ref.version;
    }
    const manifest = manifestFor(detail, finalizedAt);
    await deps.notifier.publish({
      event: 'release.mirrored',
      ...ref,
      at: finalizedAt,
      detail: {
        artifacts: Object.keys(manifest.artifacts),
        missing: manifest.missing,
        failedVerification: manifest.failedVerification,
        currentAdvanced,
        manifestKey: storeKey(mirrorPath, ref.channel, ref.board, ref.version, 'release.json'),
      },
    });
  } catch (error) {
    deps.logger.error('finalize.failed', { ...ref, error: describeError(error) });
    await deps.ledger.abandonFinalize(ref).catch(() => undefined);
    throw error;
  }
  await recordAnnounced(ref, deps);
  deps.logger.info('release.mirrored', { ...ref, currentAdvanced });
  await retainAfterAnnounce(ref, deps, config);
  return { finalized: true, currentAdvanced };
}
