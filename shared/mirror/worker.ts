import type { CldistConfig, SourceConfig } from '../config.ts';
import { findChannel } from '../config-sources.ts';
import { describeError, PermanentError, TransientError } from '../errors.ts';
import { NotFoundError } from '../http/errors.ts';
import { type Download, fetchSmall, streamDownload } from '../http/fetch.ts';
import type { ArtifactRef, AttemptRefusal, ReleaseRef, VerifiedArtifactFacts } from '../ledger/ledger.ts';
import { artifactRefOf } from '../ledger/records.ts';
import type { CldistEvent, MirrorJob } from '../messages.ts';
import { artifactUrls, channelOrigin, sourceNamed, storeKey } from '../release/layout.ts';
import type { StagedUpload } from '../store/types.ts';
import { SignatureError } from '../verify/types.ts';
import { abandonTransfer } from './abandon-transfer.ts';
import { alertOnce } from './alerts.ts';
import { alertAwaitingTrust, parkAwaitingTrust } from './awaiting-trust.ts';
import { defaultChunkSize, defaultLeaseSeconds, type MirrorDeps } from './deps.ts';
import { type FinalizeResult, finalizeIfDone } from './finalize.ts';

export type MirrorOutcome =
  | 'verified'
  /** Redelivered or duplicate job: the artifact was verified before. */
  | 'already-verified'
  /** Its signature failed before; a bad artifact is not fetched again. */
  | 'already-failed'
  | 'missing'
  /** Signed by a key not (yet) in the keyring: parked until the trust changes, not failed. */
  | 'awaiting-trust';

export interface MirrorResult {
  outcome: MirrorOutcome;
  finalize: FinalizeResult;
  bytes?: number;
  resumes?: number;
  /** `verified`: what the signature check established, for the outcome log. */
  verified?: VerifiedArtifactFacts;
  /** `awaiting-trust`: the key the trust did not know, when the ledger names it. */
  awaiting?: { issuer: string; trustVersion?: string };
}

export interface MirrorOptions {
  /** Progress of the artifact's download, for a progress bar. */
  onProgress?: (bytes: number, total?: number) => void;
  /** Stops the transfer between chunks (a runner shutting down); the staged upload is aborted. */
  signal?: AbortSignal;
}

function refOf(job: MirrorJob): ArtifactRef {
  return { ...releaseOf(job), artifact: job.artifact };
}

function releaseOf(job: MirrorJob): ReleaseRef {
  return { source: job.source, channel: job.channel, board: job.board, version: job.version };
}

/**
 * A job names its URLs, but they must be the ones the configured source and channel give for that artifact:
 * a forged or stale message can never steer the worker to another server.
 */
function checkJob(job: MirrorJob, config: CldistConfig): string[] {
  const found = findChannel(config.sources, job.source, job.channel);
  if (found === undefined) {
    throw new PermanentError(
      'unknown-channel',
      `job names channel "${job.channel}" of source "${job.source}", which is not configured`,
    );
  }
  const { source, channel } = found;
  const expected = artifactUrls(source, channel, job.board, job.version, job.artifact);
  if (expected.url !== job.url || expected.signatureUrl !== job.signatureUrl) {
    throw new PermanentError(
      'unexpected-url',
      `job URL ${job.url} is not ${expected.url}, the configured location of ${job.artifact}`,
    );
  }
  return [channelOrigin(source, channel, job.board)];
}

/** A source that names its keys accepts only those, although the keyring trusts others (another source's). */
function checkSourceKey(source: SourceConfig, primaryFingerprint: string): void {
  if (source.keys === undefined || source.keys.includes(primaryFingerprint.toUpperCase())) return;
  throw new SignatureError(
    'untrusted-key',
    `signed by ${primaryFingerprint}, a trusted key but not one of source "${source.name}"'s keys (${source.keys.join(', ')})`,
  );
}

export type TransferDeps = Pick<MirrorDeps, 'store' | 'signatures' | 'clock' | 'logger' | 'chunkSize'>;

/**
 * The data path alone, without the ledger: signature, then one streamed pass through verifier (which also gives the SHA-512) and
 * staged upload, committed only after the signature verified. Exported for the transfer benchmark.
 */
export async function transferArtifact(
  job: MirrorJob,
  deps: TransferDeps,
  config: CldistConfig,
  options: MirrorOptions = {},
): Promise<VerifiedArtifactFacts & { resumes: number }> {
  const allowedOrigins = checkJob(job, config);
  const limits = config.limits;
  const { signature, download } = await openTransfer(job, allowedOrigins, deps, config, options);
  // Shutdown must not wait for a stalled read to time out: cancelling the download fails the pending read.
  const cancelOnAbort = () => download.cancel();
  options.signal?.addEventListener('abort', cancelOnAbort, { once: true });
  if (options.signal?.aborted) download.cancel();
  const expectedBytes = download.contentLength;
  if (expectedBytes !== undefined && expectedBytes > limits.maxArtifactBytes) {
    download.cancel();
    throw new PermanentError(
      'too-large',
      `${job.url} is ${expectedBytes} bytes, over limits.maxArtifactBytes (${limits.maxArtifactBytes})`,
    );
  }
  const source = sourceNamed(config.sources, job.source);
  const key = storeKey(source.mirrorPath, job.channel, job.board, job.version, job.artifact);
  let upload: StagedUpload | undefined;
  let committed = false;
  try {
    const staged = await deps.store.beginUpload(key);
    upload = staged;
    let bytes = 0;
    async function* teed(): AsyncGenerator<Uint8Array> {
      let writing: Promise<void> = Promise.resolve();
      for await (const chunk of download.body) {
        options.signal?.throwIfAborted();
        bytes += chunk.byteLength;
        await writing;
        writing = staged.write(chunk);
        writing.catch(() => undefined);
        yield chunk;
      }
      await writing;
    }
    const verified = await deps.signatures.verify(teed(), signature, {
      now: deps.clock(),
      maxClockSkewSeconds: config.keyring.maxClockSkewSeconds,
      ...(expectedBytes === undefined ? {} : { expectedBytes }),
    });
    checkSourceKey(source, verified.primaryKeyFingerprint);
    if (expectedBytes !== undefined && bytes !== expectedBytes) {
      throw new TransientError('truncated', `${job.url}: got ${bytes} of ${expectedBytes} bytes`);
    }
    if (staged.bytesWritten !== bytes) {
      throw new TransientError(
        'store-short-write',
        `${key}: stored ${staged.bytesWritten} of ${bytes} bytes`,
      );
    }
    // The verifier computes the plain SHA-512 in the same native pass as the signature digest.
    const sha512 = verified.sha512;
    await deps.store.put(`${key}.sig`, signature, { contentType: 'application/pgp-signature' });
    await staged.commit();
    committed = true;
    return {
      size: bytes,
      sha512,
      signingKeyFingerprint: verified.signingKeyFingerprint,
      primaryKeyFingerprint: verified.primaryKeyFingerprint,
      signatureCreated: verified.signatureCreated.toISOString(),
      hashAlgorithm: verified.hashAlgorithm,
      resumes: download.resumes,
    };
  } finally {
    options.signal?.removeEventListener('abort', cancelOnAbort);
    if (!committed) await abandonTransfer(download, upload, key, deps.logger);
  }
}

/** The signature first (small, size-capped), then the artifact's download, opened but not yet read. */
async function openTransfer(
  job: MirrorJob,
  allowedOrigins: string[],
  deps: TransferDeps,
  config: CldistConfig,
  options: MirrorOptions,
): Promise<{ signature: Uint8Array; download: Download }> {
  const limits = config.limits;
  const timeoutMs = limits.requestTimeoutSeconds * 1000;
  const signature = await fetchSmall(job.signatureUrl, {
    maxBytes: limits.maxSignatureBytes,
    timeoutMs,
    allowedOrigins,
  });
  const download: Download = await streamDownload(job.url, {
    maxBytes: limits.maxArtifactBytes,
    maxResumes: limits.maxResumes,
    timeoutMs,
    allowedOrigins,
    chunkSize: deps.chunkSize ?? defaultChunkSize,
    onProgress: options.onProgress,
  });
  return { signature, download };
}

/** A ledger write that failed must not leave the artifact leased until the lease runs out. */
async function releasing<T>(ref: ArtifactRef, deps: MirrorDeps, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    await deps.ledger.endAttempt(ref, describeError(error)).catch(() => undefined);
    throw error;
  }
}

async function reportMissing(job: MirrorJob, error: NotFoundError, deps: MirrorDeps): Promise<void> {
  const ref = refOf(job);
  await releasing(ref, deps, () => deps.ledger.markMissing(ref, error.message));
  await alertOnce(
    ref,
    'missing',
    () => ({
      event: 'artifact.missing',
      ...artifactRefOf(job),
      at: deps.clock().toISOString(),
      detail: { url: error.url, message: error.message },
    }),
    deps,
  );
}

function verificationFailedEvent(job: MirrorJob, reason: string, message: string, deps: MirrorDeps) {
  return (): CldistEvent => ({
    event: 'artifact.verification_failed',
    ...artifactRefOf(job),
    at: deps.clock().toISOString(),
    detail: { reason, message, url: job.url },
  });
}

async function reportBadSignature(job: MirrorJob, error: SignatureError, deps: MirrorDeps): Promise<void> {
  const ref = refOf(job);
  await releasing(ref, deps, () =>
    deps.ledger.markFailedVerification(ref, `${error.reason}: ${error.message}`),
  );
  await alertOnce(
    ref,
    'failed_verification',
    verificationFailedEvent(job, error.reason, error.message, deps),
    deps,
  );
}

/**
 * A job whose artifact the ledger would not lease: already done (a duplicate or redelivered job; an owed
 * alert still goes out and the finalize is tried), parked for trust, busy with another worker, or unknown.
 */
async function notStarted(
  reason: AttemptRefusal,
  job: MirrorJob,
  deps: MirrorDeps,
  config: CldistConfig,
): Promise<MirrorResult> {
  const ref = refOf(job);
  const release = releaseOf(job);
  switch (reason) {
    case 'verified':
      return { outcome: 'already-verified', finalize: await finalizeIfDone(release, deps, config) };
    case 'failed_verification': {
      deps.logger.info('artifact.already_failed', { ...ref });
      const lastError = (await deps.ledger.getArtifact(ref))?.lastError ?? '';
      const split = lastError.indexOf(': ');
      await alertOnce(
        ref,
        'failed_verification',
        split > 0
          ? verificationFailedEvent(job, lastError.slice(0, split), lastError.slice(split + 2), deps)
          : verificationFailedEvent(job, 'unknown', lastError, deps),
        deps,
      );
      return { outcome: 'already-failed', finalize: await finalizeIfDone(release, deps, config) };
    }
    case 'awaiting_trust': {
      const record = await deps.ledger.getArtifact(ref);
      if (record?.awaitingIssuer !== undefined && record.trustVersion !== undefined) {
        await alertAwaitingTrust(
          job,
          { issuer: record.awaitingIssuer, trustVersion: record.trustVersion },
          deps,
        );
      }
      return {
        outcome: 'awaiting-trust',
        finalize: { finalized: false },
        ...(record?.awaitingIssuer === undefined
          ? {}
          : { awaiting: { issuer: record.awaitingIssuer, trustVersion: record.trustVersion } }),
      };
    }
    case 'busy':
      throw new TransientError(
        'artifact-busy',
        `${job.artifact} of ${job.version} is being mirrored by another worker`,
      );
    case 'unknown':
      throw new PermanentError(
        'unknown-release',
        `release ${job.source}/${job.channel}/${job.board}/${job.version} was never claimed`,
      );
  }
}

/**
 * Mirror one artifact of one release: the signature first (size-capped), then the artifact streamed once
 * through the verifier, a SHA-512 hash and a staged upload, committed only once the signature verified.
 * Safe to run any number of times for the same job. The artifact is leased in the ledger, so duplicate
 * deliveries back off instead of downloading in parallel.
 *
 * Throws PermanentError (bad signature, bad job: acknowledge, do not retry) or TransientError (network,
 * busy, store or ledger trouble: retry). A 404 is not thrown: it marks the artifact missing. Neither is a
 * signer the trust does not know: the artifact waits as `awaiting-trust` until the trust changes.
 */
export async function mirrorArtifact(
  job: MirrorJob,
  deps: MirrorDeps,
  config: CldistConfig,
  options: MirrorOptions = {},
): Promise<MirrorResult> {
  checkJob(job, config);
  options.signal?.throwIfAborted();
  const ref = refOf(job);
  const release = releaseOf(job);
  const attempt = await deps.ledger.beginAttempt(ref, deps.leaseSeconds ?? defaultLeaseSeconds);
  if (!attempt.started) return notStarted(attempt.reason, job, deps, config);
  // Sent again after a refusal for an unknown signer: the trust changed since, but this warm function's
  // keyring may not have (its reads for unknown signers are rate-limited). One conditional read settles it.
  if (attempt.record.trustVersion !== undefined) await deps.signatures.refreshTrust();
  let facts: VerifiedArtifactFacts & { resumes: number };
  try {
    facts = await transferArtifact(job, deps, config, options);
  } catch (error) {
    if (error instanceof NotFoundError) {
      await reportMissing(job, error, deps);
      return { outcome: 'missing', finalize: await finalizeIfDone(release, deps, config) };
    }
    if (error instanceof SignatureError && error.reason === 'unknown-key') {
      const awaiting = await parkAwaitingTrust(job, error, deps);
      return { outcome: 'awaiting-trust', finalize: { finalized: false }, awaiting };
    }
    if (error instanceof SignatureError) {
      await reportBadSignature(job, error, deps);
      await finalizeIfDone(release, deps, config);
      throw error;
    }
    await deps.ledger.endAttempt(ref, describeError(error)).catch(() => undefined);
    throw error;
  }
  const { resumes, ...verified } = facts;
  await deps.ledger.markVerified(ref, verified);
  return {
    outcome: 'verified',
    bytes: verified.size,
    resumes,
    verified,
    finalize: await finalizeIfDone(release, deps, config),
  };
}
