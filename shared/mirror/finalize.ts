import type { CldistConfig } from '../config.ts';
import { describeError } from '../errors.ts';
import type { ArtifactRecord, ReleaseDetail, ReleaseRef } from '../ledger/ledger.ts';
import { parseDigests } from '../release/digests.ts';
import { currentStoreKey, storeKey } from '../release/layout.ts';
import { defaultLeaseSeconds, type MirrorDeps } from './deps.ts';

const versionFileName = 'version.txt';

/** The per-release manifest, written before `current/` moves so subscribers can check every byte. */
export interface ReleaseManifest {
  channel: string;
  board: string;
  version: string;
  finalizedAt: string;
  artifacts: Record<
    string,
    {
      size: number;
      sha512: string;
      signingKeyFingerprint: string;
      primaryKeyFingerprint: string;
      signatureCreated: string;
      hashAlgorithm: string;
    }
  >;
  /** Optional artifacts the upstream release did not ship. */
  missing: string[];
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
    channel: detail.channel,
    board: detail.board,
    version: detail.version,
    finalizedAt,
    artifacts: {},
    missing: [],
  };
  for (const record of detail.artifactStates) {
    if (record.state === 'missing') {
      manifest.missing.push(record.artifact);
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
async function findDigestMismatches(detail: ReleaseDetail, deps: MirrorDeps): Promise<ArtifactRecord[]> {
  const verified = new Map(
    detail.artifactStates.filter((a) => a.state === 'verified').map((a) => [a.artifact, a] as const),
  );
  const mismatches = new Map<string, ArtifactRecord>();
  for (const digestsName of verified.keys()) {
    if (!digestsName.endsWith('.DIGESTS')) continue;
    const body = await deps.store.get(storeKey(detail.channel, detail.board, detail.version, digestsName));
    if (body === undefined) continue;
    const listed = parseDigests(new TextDecoder().decode(body));
    for (const [name, sha512] of listed) {
      const record = verified.get(name);
      if (record !== undefined && record.sha512 !== sha512) mismatches.set(name, record);
    }
  }
  return [...mismatches.values()];
}

async function refuseMismatches(detail: ReleaseDetail, mismatches: ArtifactRecord[], deps: MirrorDeps) {
  for (const record of mismatches) {
    const key = storeKey(detail.channel, detail.board, detail.version, record.artifact);
    await deps.store.delete(key);
    await deps.store.delete(`${key}.sig`);
    const reason = 'sha512 differs from the release DIGESTS';
    if (await deps.ledger.markFailedVerification(record, reason)) {
      deps.logger.error('artifact does not match its DIGESTS', { ...record });
      await deps.notifier.publish({
        event: 'artifact.verification_failed',
        channel: detail.channel,
        board: detail.board,
        version: detail.version,
        artifact: record.artifact,
        at: deps.clock().toISOString(),
        detail: { reason: 'digests-mismatch', message: reason, sha512: record.sha512 },
      });
    }
  }
}

async function copyVersionFile(from: ReleaseRef, deps: MirrorDeps): Promise<boolean> {
  const source = storeKey(from.channel, from.board, from.version, versionFileName);
  const [body, signature] = await Promise.all([deps.store.get(source), deps.store.get(`${source}.sig`)]);
  if (body === undefined) return false;
  const target = currentStoreKey(from.channel, from.board);
  if (signature !== undefined) await deps.store.put(`${target}.sig`, signature);
  await deps.store.put(target, body, { contentType: 'text/plain' });
  return true;
}

/**
 * Moves the mirror's `current/` forward. The ledger decides the winner; the store copy follows, and is
 * re-done from the ledger's answer so a slower finalize of an older release cannot leave its file last.
 */
async function advanceCurrent(detail: ReleaseDetail, deps: MirrorDeps): Promise<boolean> {
  const versionFile = detail.artifactStates.find((a) => a.artifact === versionFileName);
  if (versionFile?.state !== 'verified') {
    deps.logger.warn('release has no verified version.txt; current/ left as it is', { ...refOf(detail) });
    return false;
  }
  if (!(await deps.ledger.advanceCurrent(detail))) return false;
  await copyVersionFile(detail, deps);
  const winner = await deps.ledger.getCurrent(detail.channel, detail.board);
  if (winner !== undefined && winner.version !== detail.version) {
    await copyVersionFile({ channel: detail.channel, board: detail.board, version: winner.version }, deps);
  }
  return true;
}

function refOf(release: ReleaseRef): ReleaseRef {
  return { channel: release.channel, board: release.board, version: release.version };
}

/**
 * Finalize a release if every required artifact is done, exactly once: the ledger hands the finalize to one
 * caller. Order matters for readers: release.json, then `current/`, then `release.mirrored`. A failure
 * hands the finalize back so the retried job can take it.
 */
export async function finalizeIfDone(
  release: ReleaseRef,
  deps: MirrorDeps,
  _config: CldistConfig,
): Promise<FinalizeResult> {
  const ref = refOf(release);
  const detail = await deps.ledger.beginFinalize(ref, deps.leaseSeconds ?? defaultLeaseSeconds);
  if (detail === undefined) return { finalized: false };
  try {
    const mismatches = await findDigestMismatches(detail, deps);
    if (mismatches.length > 0) {
      await refuseMismatches(detail, mismatches, deps);
      await deps.ledger.abandonFinalize(ref);
      return { finalized: false, digestMismatches: mismatches.map((m) => m.artifact) };
    }
    const finalizedAt = deps.clock().toISOString();
    const manifest = manifestFor(detail, finalizedAt);
    await deps.store.put(
      storeKey(ref.channel, ref.board, ref.version, 'release.json'),
      `${JSON.stringify(manifest, null, 2)}\n`,
      { contentType: 'application/json' },
    );
    const currentAdvanced = await advanceCurrent(detail, deps);
    await deps.notifier.publish({
      event: 'release.mirrored',
      ...ref,
      at: finalizedAt,
      detail: {
        artifacts: Object.keys(manifest.artifacts),
        missing: manifest.missing,
        currentAdvanced,
        manifestKey: storeKey(ref.channel, ref.board, ref.version, 'release.json'),
      },
    });
    await deps.ledger.completeFinalize(ref);
    deps.logger.info('release mirrored', { ...ref, currentAdvanced });
    return { finalized: true, currentAdvanced };
  } catch (error) {
    deps.logger.error('finalize failed; it will be retried', { ...ref, error: describeError(error) });
    await deps.ledger.abandonFinalize(ref).catch(() => undefined);
    throw error;
  }
}
