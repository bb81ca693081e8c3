import type { CldistConfig } from '../shared/config.ts';
import { ConfigError } from '../shared/errors.ts';

/** Lambda's hard ceiling on one invocation. */
export const lambdaMaxTimeoutSeconds = 900;

export const lambdaMaxMemoryMiB = 10_240;

/** The memory size at which Lambda allocates one full vCPU. */
export const oneVcpuMemoryMiB = 1769;

/** Cold start, the `.sig` download, the signature check setup, completing the upload, ledger writes. */
export const fixedOverheadSeconds = 60;

/** Headroom over the pessimistic transfer time: slow origins, S3 retries, one resumed download. */
export const headroomFactor = 2;

export interface WorkerSize {
  memoryMiB: number;
  timeoutSeconds: number;
  ephemeralStorageMiB: number;
  /** The figures the size was derived from, so the docs and the stack description can show them. */
  basis: { maxArtifactBytes: number; minThroughputMBps: number; transferSeconds: number };
}

/**
 * Sizes the mirror worker so one invocation always finishes the largest artifact the config allows.
 *
 * Why these numbers (the measured figures, and the commands that produce them, are in docs/aws.md and
 * docs/benchmarks.md):
 * - The worker streams: download, signature check, SHA-512 and multipart upload run concurrently, so the
 *   time is set by the slowest stage, not their sum. Verification runs at the speed of one core's SHA-512
 *   (`npm run bench:verify`), well above what a Lambda can expect to download from the upstream origin,
 *   and an upload to S3 in the same region is faster than that download. The download is the bottleneck,
 *   so the timeout is `maxArtifactBytes / minThroughputMBps`, doubled for headroom, plus fixed overhead.
 * - Memory buys CPU. At 1769 MB Lambda gives one full vCPU (AWS Lambda developer guide, "Configuring
 *   function memory"), which the hash needs to stay above the network rate (also paying for TLS on both
 *   sides). More memory adds a second vCPU that one hash stream cannot use; less memory throttles the hash
 *   below the network. The resident set is the verifier's plus `partsInFlight × partSizeMiB` of upload
 *   buffers.
 * - Ephemeral storage stays at the 512 MiB default: nothing is written to /tmp.
 *
 * A config whose largest artifact cannot finish within Lambda's 15 minutes at the assumed rate is
 * refused at synth time, naming the fields to change, instead of deploying a worker that times out.
 */
export function sizeWorker(config: CldistConfig, minThroughputMBps: number): WorkerSize {
  const maxArtifactBytes = config.limits.maxArtifactBytes;
  const transferSeconds = maxArtifactBytes / (minThroughputMBps * 1_000_000);
  const timeoutSeconds = Math.ceil(transferSeconds * headroomFactor + fixedOverheadSeconds);
  if (timeoutSeconds > lambdaMaxTimeoutSeconds) {
    const largest = Math.floor(
      ((lambdaMaxTimeoutSeconds - fixedOverheadSeconds) / headroomFactor) * minThroughputMBps * 1_000_000,
    );
    throw new ConfigError(
      `limits.maxArtifactBytes (${maxArtifactBytes}) cannot be mirrored within Lambda's ${lambdaMaxTimeoutSeconds} s ` +
        `at cldist:deploy.worker.minThroughputMBps (${minThroughputMBps} MB/s): it needs ${timeoutSeconds} s. ` +
        `Lower limits.maxArtifactBytes to at most ${largest} or raise minThroughputMBps.`,
    );
  }
  const bufferMiB = config.worker.partSizeMiB * config.worker.partsInFlight;
  const memoryMiB = Math.max(oneVcpuMemoryMiB, 256 + 2 * bufferMiB);
  if (memoryMiB > lambdaMaxMemoryMiB) {
    throw new ConfigError(
      `worker.partSizeMiB × worker.partsInFlight (${bufferMiB} MiB of upload buffers) needs ${memoryMiB} MiB, ` +
        `more than Lambda's ${lambdaMaxMemoryMiB} MiB; lower either`,
    );
  }
  return {
    memoryMiB,
    timeoutSeconds,
    ephemeralStorageMiB: 512,
    basis: { maxArtifactBytes, minThroughputMBps, transferSeconds },
  };
}
