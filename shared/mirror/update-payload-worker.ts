import type { CldistConfig } from '../config.ts';
import { describeError, PermanentError, TransientError } from '../errors.ts';
import { NotFoundError } from '../http/errors.ts';
import type { UpdatePayloadRef } from '../ledger/ledger.ts';
import type { CldistEvent } from '../messages.ts';
import { recordAfterPublish } from '../notify/record-after-publish.ts';
import type { UpdatePayloadRecord } from '../update/payload-record.ts';
import { defaultLeaseSeconds, type MirrorDeps } from './deps.ts';
import type { UpdatePayloadJob } from './update-payload-job.ts';
import {
  checkPayloadJob,
  isRefusal,
  type PayloadTransferOptions,
  type TransferredPayload,
  transferPayload,
} from './update-payload-transfer.ts';

export type PayloadOutcome =
  | 'verified'
  /** Redelivered or duplicate job (or another channel's): the payload was verified before. */
  | 'already-verified'
  /** Refused before; a bad payload is not fetched again. */
  | 'already-failed'
  /** The origin answered 404: not every OEM or extension payload exists for every release. */
  | 'missing'
  | 'already-missing';

export interface PayloadResult {
  outcome: PayloadOutcome;
  /** `verified`: what was recorded, and how it was checked. */
  transferred?: TransferredPayload;
}

const alertLeaseSeconds = 60;

function refOf(job: UpdatePayloadJob): UpdatePayloadRef {
  return { board: job.board, version: job.version, name: job.name };
}

function refusedEvent(job: UpdatePayloadJob, reason: string, message: string, at: Date): CldistEvent {
  return {
    event: 'artifact.verification_failed',
    source: job.source,
    channel: job.channel,
    board: job.board,
    version: job.version,
    artifact: job.name,
    at: at.toISOString(),
    detail: { reason, message, url: job.url, kind: 'update-payload' },
  };
}

/**
 * The refusal's alert, on the same event as a tampered image, at least once: claimed for a short while so
 * two deliveries do not both publish, recorded after publishing so a crash in between repeats it rather
 * than losing it. `lastError` holds `reason: message`, so a redelivery raises the same alert.
 */
async function alertRefused(job: UpdatePayloadJob, lastError: string, deps: MirrorDeps): Promise<boolean> {
  const ref = refOf(job);
  if (!(await deps.ledger.claimPayloadAlert(ref, alertLeaseSeconds))) {
    const item = await deps.ledger.getPayload(ref);
    if (item?.state === 'failed_verification' && item.alertedAt === undefined) {
      throw new TransientError(
        'alert-busy',
        `the alert for update payload ${job.name} of ${job.version} is being sent by another worker`,
      );
    }
    return false;
  }
  const split = lastError.indexOf(': ');
  const [reason, message] =
    split > 0 ? [lastError.slice(0, split), lastError.slice(split + 2)] : ['unknown', lastError];
  try {
    await deps.notifier.publish(refusedEvent(job, reason, message, deps.clock()));
  } catch (error) {
    await deps.ledger.releasePayloadAlert(ref).catch(() => undefined);
    throw error;
  }
  await recordAfterPublish('the update payload alert', { ...ref }, deps, () =>
    deps.ledger.recordPayloadAlert(ref),
  );
  return true;
}

/** A job the ledger would not lease: already judged (an owed alert still goes out), busy, or never planned. */
async function notStarted(
  reason: 'verified' | 'failed_verification' | 'missing' | 'busy' | 'unknown',
  job: UpdatePayloadJob,
  deps: MirrorDeps,
): Promise<PayloadResult> {
  switch (reason) {
    case 'verified':
      return { outcome: 'already-verified' };
    case 'missing':
      return { outcome: 'already-missing' };
    case 'failed_verification': {
      const item = await deps.ledger.getPayload(refOf(job));
      await alertRefused(job, item?.lastError ?? 'unknown', deps);
      return { outcome: 'already-failed' };
    }
    case 'busy':
      throw new TransientError(
        'payload-busy',
        `update payload ${job.name} of ${job.version} is being mirrored by another worker`,
      );
    case 'unknown':
      throw new PermanentError(
        'unknown-payload',
        `update payload ${job.board}/${job.version}/${job.name} was never planned`,
      );
  }
}

/**
 * Mirror one update payload: leased in the ledger, streamed once through the CrAU reader into a staged
 * upload, committed and recorded only when its embedded signature verifies with a configured key and
 * the origin's `.sha256` and `.sig`, where published, agree. Safe to run any number of times.
 *
 * A refusal is recorded, alerted on `artifact.verification_failed` and thrown (a PermanentError: the job is
 * acknowledged, never retried). A 404 is recorded as missing. Anything else ends the attempt and is thrown
 * for a retry.
 */
export async function mirrorUpdatePayload(
  job: UpdatePayloadJob,
  deps: MirrorDeps,
  config: CldistConfig,
  options: PayloadTransferOptions = {},
): Promise<PayloadResult> {
  checkPayloadJob(job, config);
  options.signal?.throwIfAborted();
  const ref = refOf(job);
  const attempt = await deps.ledger.beginPayload(ref, deps.leaseSeconds ?? defaultLeaseSeconds);
  if (!attempt.started) return notStarted(attempt.reason, job, deps);
  let transferred: TransferredPayload;
  try {
    transferred = await transferPayload(job, deps, config, options);
  } catch (error) {
    if (error instanceof NotFoundError) {
      await deps.ledger.markPayloadMissing(ref, error.message);
      return { outcome: 'missing' };
    }
    if (isRefusal(error)) {
      const lastError = `${error.reason}: ${error.message}`;
      await deps.ledger.markPayloadFailed(ref, lastError);
      await alertRefused(job, lastError, deps);
      throw error;
    }
    await deps.ledger.endPayloadAttempt(ref, describeError(error)).catch(() => undefined);
    throw error;
  }
  const record: UpdatePayloadRecord = transferred.record;
  await deps.ledger.markPayloadVerified(record, transferred.key.fingerprint);
  return { outcome: 'verified', transferred };
}
