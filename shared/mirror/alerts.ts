import { TransientError } from '../errors.ts';
import type { AlertState, ArtifactRef } from '../ledger/ledger.ts';
import type { CldistEvent } from '../messages.ts';
import { recordAfterPublish } from '../notify/record-after-publish.ts';
import type { MirrorDeps } from './deps.ts';

const alertLeaseSeconds = 60;

/**
 * Publishes the alert owed for an artifact in a terminal state, at least once and normally exactly once.
 * The ledger, not the caller's own transition, says whether it is owed: a retry after a lost ledger response
 * finds the state set and `alertedAt` unset, and publishes. A short claim keeps two deliveries of one job from
 * publishing together; `alertedAt` is recorded after the publish, retried in place through a short ledger
 * outage, so only a crash between the two repeats the alert (subscribers dedupe by event, release and
 * artifact) instead of losing it.
 *
 * Returns whether this caller published. Throws TransientError while another caller holds the claim and the
 * alert is still owed, so the job is retried rather than acknowledged with the alert unsent.
 */
export async function alertOnce(
  ref: ArtifactRef,
  state: AlertState,
  event: () => CldistEvent,
  deps: MirrorDeps,
): Promise<boolean> {
  if (!(await deps.ledger.claimAlert(ref, state, alertLeaseSeconds))) {
    const record = await deps.ledger.getArtifact(ref);
    if (record?.state === state && record.alertedAt === undefined) {
      throw new TransientError(
        'alert-busy',
        `the ${state} alert for ${ref.artifact} of ${ref.version} is being sent by another worker`,
      );
    }
    return false;
  }
  try {
    await deps.notifier.publish(event());
  } catch (error) {
    await deps.ledger.releaseAlert(ref).catch(() => undefined);
    throw error;
  }
  await recordAfterPublish(`the ${state} alert`, { ...ref }, deps, () => deps.ledger.recordAlert(ref, state));
  return true;
}
