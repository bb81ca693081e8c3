/** The records the mirror keeps in the ledger, as its callers see them (without the table's keys). */

/**
 * `awaiting_trust`: refused only because the signer is not in the keyring (yet). It is not a verdict: the
 * next poll after the trust changes sends it again.
 */
export type ArtifactState = 'pending' | 'verified' | 'missing' | 'failed_verification' | 'awaiting_trust';

/** One board of one channel of one source: what is polled, and what has a current version. */
export interface StreamRef {
  /** The configured source's name: two sources may both have a `stable` channel. */
  source: string;
  channel: string;
  board: string;
}

export interface ReleaseRef extends StreamRef {
  version: string;
}

export interface ArtifactRef extends ReleaseRef {
  artifact: string;
}

/** Only the release's identity of a record, job or event that carries more: what keys and events name. */
export function releaseRefOf(from: ReleaseRef): ReleaseRef {
  return { source: from.source, channel: from.channel, board: from.board, version: from.version };
}

/** Only the artifact's identity of a record, job or event that carries more. */
export function artifactRefOf(from: ArtifactRef): ArtifactRef {
  return { ...releaseRefOf(from), artifact: from.artifact };
}

/** What the poller knows about an artifact when it claims a release; kept so stalled jobs can be re-sent. */
export interface ArtifactPlan {
  name: string;
  required: boolean;
  url: string;
  signatureUrl: string;
}

/** The facts a good signature and the stream established; they become the artifact's entry in release.json. */
export interface VerifiedArtifactFacts {
  size: number;
  sha512: string;
  signingKeyFingerprint: string;
  primaryKeyFingerprint: string;
  signatureCreated: string;
  hashAlgorithm: string;
}

export interface ArtifactRecord extends ArtifactRef, Partial<VerifiedArtifactFacts> {
  required: boolean;
  state: ArtifactState;
  attempts: number;
  url: string;
  signatureUrl: string;
  lastError?: string;
  /** While set and in the future, a worker holds the artifact; others back off. */
  leaseUntil?: string;
  /**
   * When the alert for the current terminal state (missing, failed_verification) went out. Unset while the
   * alert is owed, so a retry after a lost ledger response still publishes it.
   */
  alertedAt?: string;
  /** While awaiting trust: the signer's key ID. */
  awaitingIssuer?: string;
  /**
   * The trust version of the last refusal for an unknown signer; kept when the artifact is sent again, so
   * the worker knows its keyring may be older than the trust that made the poller send it.
   */
  trustVersion?: string;
  updatedAt: string;
}

/** The artifact states that raise an alert once reached. */
export type AlertState = 'missing' | 'failed_verification';

export interface ReleaseRecord extends ReleaseRef {
  claimedAt: string;
  artifacts: string[];
  required: string[];
  finalizedAt?: string;
  finalizeLeaseUntil?: string;
  /**
   * Set with `finalizedAt` and removed once `release.mirrored` went out: the finalize work is done but the
   * announcement is still owed, so the next finalize attempt only publishes.
   */
  announcePending?: boolean;
  announcedAt?: string;
  /**
   * Set when retention starts deleting the release: from then on it is out of every listing, and only
   * the finish of its prune (by this run or a later one) touches it.
   */
  pruningSince?: string;
  /** The `keepReleases` setting that condemned it, for the `release.pruned` event. */
  pruneKeep?: number;
}

export interface ReleaseDetail extends ReleaseRecord {
  artifactStates: ArtifactRecord[];
}

export interface PollState extends StreamRef {
  etag?: string;
  lastModified?: string;
  lastVersion?: string;
  checkedAt: string;
  /** Set while `current/version.txt` answers 404: since when, so the warning goes out once. */
  notPublishedSince?: string;
}

export interface MirrorCurrent extends StreamRef {
  version: string;
  updatedAt: string;
}

/** Why `beginAttempt` did not hand out the artifact. */
export type AttemptRefusal = 'verified' | 'failed_verification' | 'awaiting_trust' | 'busy' | 'unknown';

/** What a refusal for an unknown signer leaves in the ledger. */
export interface AwaitingTrust {
  /** The signer's key ID (or fingerprint), as the signature names it. */
  issuer: string;
  /** The trust version that did not know it; a later version sends the artifact again. */
  trustVersion: string;
  detail: string;
}
