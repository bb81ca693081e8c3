import type { CldistConfig } from '../config.ts';
import { findChannel } from '../config-sources.ts';
import { ConfigError, PermanentError, TransientError } from '../errors.ts';
import { NotFoundError } from '../http/errors.ts';
import { type Download, fetchSmall, streamDownload } from '../http/fetch.ts';
import type { StagedUpload } from '../store/types.ts';
import { type CrauFacts, CrauStreamReader } from '../update/crau-reader.ts';
import { type UpdatePayloadKey, verifyCrauSignatures } from '../update/crau-verify.ts';
import { PayloadChecksumError, UpdatePayloadRefusedError } from '../update/errors.ts';
import { configuredPayloads, updatePayloadUrl } from '../update/origin.ts';
import { type UpdatePayloadRecord, updatePayloadKey } from '../update/payload-record.ts';
import { SignatureError, type VerifiedSignature } from '../verify/types.ts';
import { abandonTransfer } from './abandon-transfer.ts';
import { defaultChunkSize, type MirrorDeps } from './deps.ts';
import type { UpdatePayloadJob } from './update-payload-job.ts';

export type PayloadTransferDeps = Pick<
  MirrorDeps,
  'store' | 'signatures' | 'clock' | 'logger' | 'chunkSize' | 'updateKeys'
>;

export interface PayloadTransferOptions {
  onProgress?: (bytes: number, total?: number) => void;
  /** Stops the transfer between chunks; the staged upload is aborted. */
  signal?: AbortSignal;
}

export interface TransferredPayload {
  record: UpdatePayloadRecord;
  /** The key whose signature verified. */
  key: UpdatePayloadKey;
  /** Which of the origin's optional companions were published and agreed. */
  crossChecked: { sha256: boolean; openpgp: boolean };
  openpgp?: VerifiedSignature;
  resumes: number;
}

/**
 * A job names its URL, but it must be the one the config gives for that payload: a forged or stale message
 * can never steer the worker to another server, or to a payload nobody configured.
 */
export function checkPayloadJob(job: UpdatePayloadJob, config: CldistConfig): string[] {
  const update = config.update;
  if (update === undefined) {
    throw new PermanentError(
      'update-not-configured',
      `job names update payload ${job.name}, but update is not configured`,
    );
  }
  if (!configuredPayloads(update).includes(job.name)) {
    throw new PermanentError(
      'unknown-payload',
      `job names update payload ${job.name}, which is not in update.payloads`,
    );
  }
  const found = findChannel(config.sources, job.source, job.channel);
  if (found === undefined) {
    throw new PermanentError(
      'unknown-channel',
      `job names channel "${job.channel}" of source "${job.source}", which is not configured`,
    );
  }
  if (!found.channel.boards.includes(job.board)) {
    throw new PermanentError('unknown-board', `job names board ${job.board}, which is not configured`);
  }
  const expected = updatePayloadUrl(update, job.board, job.version, job.name);
  if (job.url !== expected) {
    throw new PermanentError(
      'unexpected-url',
      `job URL ${job.url} is not ${expected}, the configured location of ${job.name}`,
    );
  }
  return [new URL(expected).origin];
}

/** A companion file the origin may or may not publish; absent is fine, unreachable is a retry. */
async function optionalCompanion(url: string, config: CldistConfig, allowedOrigins: string[]) {
  try {
    return await fetchSmall(url, {
      maxBytes: config.limits.maxSignatureBytes,
      timeoutMs: config.limits.requestTimeoutSeconds * 1000,
      allowedOrigins,
    });
  } catch (error) {
    if (error instanceof NotFoundError) return undefined;
    throw error;
  }
}

/** `sha256sum` output (`<hex>  <name>`) or the bare hex digest; the name, if any, is not checked. */
export function checkSha256File(text: Uint8Array, actualHex: string, name: string): void {
  const first = new TextDecoder().decode(text).trim().split(/\s+/)[0] ?? '';
  if (!/^[0-9a-fA-F]{64}$/.test(first)) {
    throw new PayloadChecksumError(
      'sha256-unreadable',
      `${name}.sha256 does not start with a SHA-256 hex digest`,
    );
  }
  if (first.toLowerCase() !== actualHex) {
    throw new PayloadChecksumError(
      'sha256-mismatch',
      `${name}.sha256 names ${first.toLowerCase()}, but the payload's SHA-256 is ${actualHex}`,
    );
  }
}

function keysOf(deps: PayloadTransferDeps): readonly UpdatePayloadKey[] {
  const keys = deps.updateKeys;
  if (keys === undefined || keys.length === 0) {
    throw new ConfigError(
      'update payload keys are not loaded: the runtime reads update.payloadKeys at start',
    );
  }
  return keys;
}

interface StreamedPayload {
  facts: CrauFacts;
  bytes: number;
  openpgp?: VerifiedSignature;
}

/**
 * The one pass: each chunk goes through the CrAU reader (size, SHA-1, SHA-256, signed hash), into the
 * staged upload and, when the origin publishes a detached `.sig`, through the OpenPGP verifier, which then
 * drives the iteration. A CrAU refusal raised mid-stream is kept and rethrown as itself, whatever the
 * OpenPGP verifier makes of the stream ending early.
 */
async function streamOnce(
  download: Download,
  staged: StagedUpload,
  detached: Uint8Array | undefined,
  deps: PayloadTransferDeps,
  config: CldistConfig,
  signal: AbortSignal | undefined,
): Promise<StreamedPayload> {
  const reader = new CrauStreamReader();
  let refusal: unknown;
  async function* pass(): AsyncGenerator<Uint8Array> {
    let writing: Promise<void> = Promise.resolve();
    for await (const chunk of download.body) {
      signal?.throwIfAborted();
      try {
        reader.update(chunk);
      } catch (error) {
        refusal = error;
        throw error;
      }
      await writing;
      writing = staged.write(chunk);
      writing.catch(() => undefined);
      yield chunk;
    }
    await writing;
  }
  let openpgp: VerifiedSignature | undefined;
  try {
    if (detached === undefined) {
      for await (const _chunk of pass()) {
        // The pass does the work; nothing else reads the bytes.
      }
    } else {
      openpgp = await deps.signatures.verify(pass(), detached, {
        now: deps.clock(),
        maxClockSkewSeconds: config.keyring.maxClockSkewSeconds,
        ...(download.contentLength === undefined ? {} : { expectedBytes: download.contentLength }),
      });
    }
  } catch (error) {
    throw refusal ?? error;
  }
  const bytes = reader.bytesRead;
  if (download.contentLength !== undefined && bytes !== download.contentLength) {
    throw new TransientError('truncated', `${download.url}: got ${bytes} of ${download.contentLength} bytes`);
  }
  return { facts: reader.finish(), bytes, ...(openpgp === undefined ? {} : { openpgp }) };
}

/**
 * The data path of one payload, without the ledger: companions first (size-capped), then one streamed pass
 * through the CrAU reader and a staged upload, committed only once the embedded signature verified with a
 * configured key and every published companion agreed. Throws UpdatePayloadRefusedError or SignatureError
 * (refused: never stored), NotFoundError (not published), TransientError (retry).
 */
export async function transferPayload(
  job: UpdatePayloadJob,
  deps: PayloadTransferDeps,
  config: CldistConfig,
  options: PayloadTransferOptions = {},
): Promise<TransferredPayload> {
  const allowedOrigins = checkPayloadJob(job, config);
  const keys = keysOf(deps);
  const limits = config.limits;
  const sha256File = await optionalCompanion(`${job.url}.sha256`, config, allowedOrigins);
  const detached = await optionalCompanion(`${job.url}.sig`, config, allowedOrigins);
  const download = await streamDownload(job.url, {
    maxBytes: limits.maxArtifactBytes,
    maxResumes: limits.maxResumes,
    timeoutMs: limits.requestTimeoutSeconds * 1000,
    allowedOrigins,
    chunkSize: deps.chunkSize ?? defaultChunkSize,
    onProgress: options.onProgress,
  });
  const cancelOnAbort = () => download.cancel();
  options.signal?.addEventListener('abort', cancelOnAbort, { once: true });
  if (options.signal?.aborted) download.cancel();
  const key = updatePayloadKey(job.board, job.version, job.name);
  let upload: StagedUpload | undefined;
  let committed = false;
  try {
    const staged = await deps.store.beginUpload(key, { contentType: 'application/octet-stream' });
    upload = staged;
    const streamed = await streamOnce(download, staged, detached, deps, config, options.signal);
    const { facts } = streamed;
    const verified = verifyCrauSignatures(facts, keys);
    const sha256Hex = facts.sha256.toString('hex');
    if (sha256File !== undefined) checkSha256File(sha256File, sha256Hex, job.name);
    if (staged.bytesWritten !== streamed.bytes) {
      throw new TransientError(
        'store-short-write',
        `${key}: stored ${staged.bytesWritten} of ${streamed.bytes} bytes`,
      );
    }
    await staged.commit();
    committed = true;
    return {
      record: {
        board: job.board,
        version: job.version,
        name: job.name,
        key,
        size: facts.size,
        sha1Base64: facts.sha1.toString('base64'),
        sha256Hex,
        verifiedAt: deps.clock().toISOString(),
      },
      key: verified.key,
      crossChecked: { sha256: sha256File !== undefined, openpgp: streamed.openpgp !== undefined },
      ...(streamed.openpgp === undefined ? {} : { openpgp: streamed.openpgp }),
      resumes: download.resumes,
    };
  } finally {
    options.signal?.removeEventListener('abort', cancelOnAbort);
    if (!committed) await abandonTransfer(download, upload, key, deps.logger);
  }
}

/** Whether an error refuses the payload for good (and alerts), as opposed to a retry or a missing file. */
export function isRefusal(error: unknown): error is UpdatePayloadRefusedError | SignatureError {
  return error instanceof UpdatePayloadRefusedError || error instanceof SignatureError;
}
