import type { ArtifactRecord, ReleaseDetail } from '../ledger/ledger.ts';

/**
 * A release as an operator sees it. `failed`: a required artifact was refused for good (tampered, revoked or
 * weak signature, DIGESTS mismatch). `awaiting-trust`: only an unknown signer holds it back, which uploading
 * the rotated key resolves; it is not failed. `in-progress`: artifacts still open (including a required one
 * the upstream does not serve yet). `pruning`: retention is deleting it; it is never again `mirrored`, and
 * only listed when asked for by this state.
 */
export type ReleaseState = 'mirrored' | 'failed' | 'awaiting-trust' | 'in-progress' | 'pruning';

export const releaseStates: readonly ReleaseState[] = [
  'mirrored',
  'failed',
  'awaiting-trust',
  'in-progress',
  'pruning',
];

function recordOf(detail: ReleaseDetail, name: string): ArtifactRecord | undefined {
  return detail.artifactStates.find((a) => a.artifact === name);
}

export function releaseState(detail: ReleaseDetail): ReleaseState {
  if (detail.pruningSince !== undefined) return 'pruning';
  if (detail.finalizedAt !== undefined) return 'mirrored';
  const records = detail.artifacts.map((name) => recordOf(detail, name));
  if (records.some((r) => r?.required === true && r.state === 'failed_verification')) return 'failed';
  if (records.some((r) => r?.state === 'awaiting_trust')) return 'awaiting-trust';
  return 'in-progress';
}
