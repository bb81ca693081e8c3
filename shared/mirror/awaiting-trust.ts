import { TransientError } from '../errors.ts';
import type { ArtifactRef, AwaitingTrust } from '../ledger/ledger.ts';
import { artifactRefOf } from '../ledger/records.ts';
import type { MirrorJob } from '../messages.ts';
import type { SignatureError } from '../verify/types.ts';
import type { MirrorDeps } from './deps.ts';

/** What the operator is told to do; the same words in the alert, the log line and the docs. */
export function uploadAdvice(issuer: string, location: string): string {
  return `add the public key that holds signing key ${issuer} (the trusted primary key with its new subkey, ASCII-armored: gpg --armor --export PRIMARY) to ${location}; the next poll after the upload sends the waiting artifacts again`;
}

function refOf(job: MirrorJob): ArtifactRef {
  return artifactRefOf(job);
}

/**
 * The one alert per signer and trust version, however many artifacts and releases the key signed. A failed
 * publish gives the claim back and fails the job as transient: the redelivery finds the artifact awaiting
 * trust and comes back here.
 */
export async function alertAwaitingTrust(
  job: MirrorJob,
  wait: Pick<AwaitingTrust, 'issuer' | 'trustVersion'>,
  deps: MirrorDeps,
): Promise<boolean> {
  if (!(await deps.ledger.claimTrustAlert(wait.issuer, wait.trustVersion))) return false;
  const location = deps.signatures.trustLocation;
  const advice = uploadAdvice(wait.issuer, location);
  try {
    await deps.notifier.publish({
      event: 'signing_key.unknown',
      source: job.source,
      channel: job.channel,
      board: job.board,
      version: job.version,
      at: deps.clock().toISOString(),
      detail: { keyId: wait.issuer, upload: location, advice, artifact: job.artifact, url: job.url },
    });
  } catch (error) {
    await deps.ledger.releaseTrustAlert(wait.issuer, wait.trustVersion).catch(() => undefined);
    throw new TransientError('alert-failed', `the alert for unknown signing key ${wait.issuer} failed`, {
      cause: error,
    });
  }
  deps.logger.error('signing_key.unknown', { keyId: wait.issuer, location, advice });
  return true;
}

/**
 * A signature by a key the keyring does not know is not a verdict on the release: upstream rotated its
 * signing subkey and the operator has not uploaded it yet. The artifact waits in the ledger for a new trust
 * version, and is acknowledged, not retried: nothing changes until the trust does.
 */
export async function parkAwaitingTrust(
  job: MirrorJob,
  error: SignatureError,
  deps: MirrorDeps,
): Promise<AwaitingTrust> {
  const ref = refOf(job);
  const wait: AwaitingTrust = {
    issuer: error.issuer ?? 'unknown',
    trustVersion: error.trustVersion ?? 'unknown',
    detail: `unknown-key: ${error.message}`,
  };
  try {
    await deps.ledger.markAwaitingTrust(ref, wait);
  } catch (cause) {
    await deps.ledger.endAttempt(ref, error.message).catch(() => undefined);
    throw cause;
  }
  await alertAwaitingTrust(job, wait, deps);
  return wait;
}
