import type { CldistConfig } from '../config.ts';
import { describeError, PermanentError } from '../errors.ts';
import { parseMirrorJob } from '../messages.ts';
import type { MirrorLogger, QueueJob } from './deps.ts';
import type { MirrorRuntime } from './runtime.ts';
import {
  isUpdatePayloadMessage,
  parseUpdatePayloadJob,
  type UpdatePayloadJob,
} from './update-payload-job.ts';
import { mirrorUpdatePayload, type PayloadOutcome, type PayloadResult } from './update-payload-worker.ts';
import { type MirrorOutcome, mirrorArtifact } from './worker.ts';

/** `ack`: the message is done with (success, or a failure no retry can fix); `retry`: deliver it again. */
export type JobDisposition = 'ack' | 'retry';

export interface MirrorJobResult {
  disposition: JobDisposition;
  /** The core's outcome, or how the job ended without one. */
  outcome: MirrorOutcome | PayloadOutcome | 'rejected' | 'failed' | 'aborted';
  /** What was thrown, for a job that did not end with a core outcome. */
  error?: unknown;
  facts: {
    job?: QueueJob;
    bytes?: number;
    finalized?: boolean;
    /** Stable code of the error, for a `rejected` or `failed` job. */
    code?: string;
    error?: string;
  };
}

export interface MirrorJobOptions {
  /** Aborted when the host stops: the transfer stops and leaves nothing visible. */
  signal?: AbortSignal;
  onProgress?: (bytes: number, total?: number) => void;
  /** How many times the queue has handed out this message, this one included; for the retry log. */
  receiveCount?: number;
  messageId?: string;
}

/** The permanent/transient decision, by class alone: a retry cannot fix a PermanentError. */
export function dispositionOf(error: unknown): JobDisposition {
  return error instanceof PermanentError ? 'ack' : 'retry';
}

/**
 * Seconds until a transiently failed job comes back: `queue.retry.firstDelaySeconds`, doubling per
 * delivery, capped at `maxDelaySeconds`. Both hosts hide the message for this long.
 */
export function retryDelaySeconds(receiveCount: number, retry: CldistConfig['queue']['retry']): number {
  const doubled = retry.firstDelaySeconds * 2 ** Math.max(0, receiveCount - 1);
  return Math.min(retry.maxDelaySeconds, doubled);
}

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : error instanceof Error ? error.name : 'unknown';
}

function isAbort(error: unknown, signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true || (error instanceof Error && error.name === 'AbortError');
}

function logPayloadOutcome(log: MirrorLogger, job: UpdatePayloadJob, result: PayloadResult): void {
  const ref = { channel: job.channel, board: job.board, version: job.version, payload: job.name };
  const transferred = result.transferred;
  if (result.outcome === 'verified' && transferred !== undefined) {
    log.info('update_payload.verified', {
      ...ref,
      bytes: transferred.record.size,
      sha256: transferred.record.sha256Hex,
      key: transferred.key.source,
      keyFingerprint: transferred.key.fingerprint,
      sha256FileChecked: transferred.crossChecked.sha256,
      openpgpChecked: transferred.crossChecked.openpgp,
      resumes: transferred.resumes,
    });
  } else if (result.outcome === 'missing') {
    log.warn('update_payload.missing', { ...ref, url: job.url });
  } else {
    log.debug(`update_payload.${result.outcome.replace('-', '_')}`, ref);
  }
}

/**
 * The mirror's job policy, the same on every host: parse the message, mirror the artifact (or the update
 * payload, for a message of that kind), acknowledge a PermanentError (reported, never retried) and retry
 * the rest. It logs the one set of outcome events (`artifact.verified`, `artifact.missing`,
 * `artifact.awaiting_trust`, `update_payload.verified`, `update_payload.missing`, `worker.job_rejected`,
 * `worker.job_retry`) and never throws: the host maps the disposition onto its queue.
 */
export async function runMirrorJob(
  body: string,
  runtime: Pick<MirrorRuntime, 'deps' | 'config'>,
  options: MirrorJobOptions = {},
): Promise<MirrorJobResult> {
  const { deps, config } = runtime;
  const log = deps.logger;
  const context = options.messageId === undefined ? {} : { messageId: options.messageId };
  let job: QueueJob | undefined;
  const transfer = {
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
  };
  try {
    if (isUpdatePayloadMessage(body)) {
      const payloadJob = parseUpdatePayloadJob(body);
      job = payloadJob;
      const result = await mirrorUpdatePayload(payloadJob, deps, config, transfer);
      logPayloadOutcome(log, payloadJob, result);
      const bytes = result.transferred?.record.size;
      return {
        disposition: 'ack',
        outcome: result.outcome,
        facts: { job, ...(bytes === undefined ? {} : { bytes }) },
      };
    }
    job = parseMirrorJob(body);
    const ref = { channel: job.channel, board: job.board, version: job.version, artifact: job.artifact };
    const result = await mirrorArtifact(job, deps, config, transfer);
    const finalized = result.finalize.finalized;
    if (result.outcome === 'verified') {
      log.info('artifact.verified', {
        ...ref,
        bytes: result.bytes,
        resumes: result.resumes,
        signer: result.verified?.signingKeyFingerprint,
        signed: result.verified?.signatureCreated,
      });
    } else if (result.outcome === 'missing') {
      log.warn('artifact.missing', ref);
    } else if (result.outcome === 'awaiting-trust') {
      log.warn('artifact.awaiting_trust', {
        ...ref,
        keyId: result.awaiting?.issuer,
        trustVersion: result.awaiting?.trustVersion,
        trustLocation: deps.signatures.trustLocation,
      });
    } else {
      log.debug(`artifact.${result.outcome.replace('-', '_')}`, ref);
    }
    return {
      disposition: 'ack',
      outcome: result.outcome,
      facts: { job, finalized, ...(result.bytes === undefined ? {} : { bytes: result.bytes }) },
    };
  } catch (error) {
    const facts = {
      ...(job === undefined ? {} : { job }),
      code: errorCode(error),
      error: describeError(error),
    };
    if (isAbort(error, options.signal)) {
      log.debug('worker.job_aborted', { ...context, ...facts });
      return { disposition: 'retry', outcome: 'aborted', facts, error };
    }
    if (dispositionOf(error) === 'ack') {
      log.error('worker.job_rejected', { ...context, ...facts });
      return { disposition: 'ack', outcome: 'rejected', facts, error };
    }
    const retryInSeconds =
      options.receiveCount === undefined
        ? undefined
        : retryDelaySeconds(options.receiveCount, config.queue.retry);
    log.warn('worker.job_retry', {
      ...context,
      receiveCount: options.receiveCount,
      retryInSeconds,
      ...facts,
    });
    return { disposition: 'retry', outcome: 'failed', facts, error };
  }
}
