import type { SendMessageBatchCommandOutput, SQSClient } from '@aws-sdk/client-sqs';
import { TransientError } from '../errors.ts';
import type { Ledger } from '../ledger/ledger.ts';
import type { CldistEvent, MirrorJob } from '../messages.ts';
import type { PinnedReleases } from '../retention/pinned.ts';
import type { ObjectStore } from '../store/types.ts';
import type { MetricName } from '../telemetry-names.ts';
import type { UpdatePayloadKey } from '../update/crau-verify.ts';
import type { KeyringStatus, VerifiedSignature, VerifyOptions } from '../verify/types.ts';
import type { UpdatePayloadJob } from './update-payload-job.ts';

export type Clock = () => Date;

/** The part of a Powertools Logger the cores use, so a console or a test logger fits too. */
export interface MirrorLogger {
  debug(message: string, ...attributes: Record<string, unknown>[]): void;
  info(message: string, ...attributes: Record<string, unknown>[]): void;
  warn(message: string, ...attributes: Record<string, unknown>[]): void;
  error(message: string, ...attributes: Record<string, unknown>[]): void;
}

export interface MetricSink {
  addMetric(name: MetricName, unit: 'Count', value: number): void;
}

/** A queue message: an artifact of a release, or an update payload of one. */
export type QueueJob = MirrorJob | UpdatePayloadJob;

/** Where jobs go: SQS in AWS, fauxqs on one machine, an array in a unit test. */
export interface JobQueue {
  sendJobs(jobs: QueueJob[]): Promise<void>;
}

/** The shape of `Notifier` in shared/notify, restated so the cores do not depend on an adapter. */
export interface EventSink {
  publish(event: CldistEvent): Promise<void>;
}

/**
 * The keyring seen through what the cores need of it. A seam: the handler can swap in a checker over an
 * extended keyring (key rotation) without the cores knowing.
 */
export interface SignatureChecker {
  verify(
    data: AsyncIterable<Uint8Array>,
    signature: Uint8Array,
    options: VerifyOptions,
  ): Promise<VerifiedSignature>;
  status(now: Date, warningDays: number): KeyringStatus | Promise<KeyringStatus>;
  /**
   * Reads the trust source now (one conditional read) and names the version in force and where rotated keys
   * go. The poller compares the version with the one each awaiting-trust artifact was refused under.
   */
  refreshTrust(): Promise<TrustState>;
  /** Where an operator uploads a rotated key, for alerts. */
  readonly trustLocation: string;
}

export interface TrustState {
  /** ETag of the trust object, hash of the trust files, or `static`. */
  version: string;
  /** Where an operator uploads a rotated key. */
  location: string;
}

/** Everything the mirror cores touch, passed in so the same code runs in Lambda, on one machine and in tests. */
export interface MirrorDeps {
  ledger: Ledger;
  store: ObjectStore;
  notifier: EventSink;
  jobs: JobQueue;
  signatures: SignatureChecker;
  clock: Clock;
  logger: MirrorLogger;
  /** Releases retention must keep whatever their age; absent: nothing is pinned. */
  pinned?: PinnedReleases;
  /** Powertools Metrics in Lambda; absent on one machine. */
  metrics?: MetricSink;
  /** How long a worker holds an artifact before another may take it over (a crashed worker's lease). */
  leaseSeconds?: number;
  /** Bytes per chunk asked of the download; about 1 MiB keeps the verifier fast (`bench/http-download.ts` compares sizes). */
  chunkSize?: number;
  /** The keys update payloads are checked against (`update.payloadKeys`), loaded once at start. */
  updateKeys?: readonly UpdatePayloadKey[];
}

export const defaultLeaseSeconds = 15 * 60;
export const defaultChunkSize = 1024 * 1024;

export const silentLogger: MirrorLogger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

const maxBatch = 10;

/**
 * SendMessageBatch takes at most 10 entries and may fail some of them while answering 200; failed entries
 * are sent once more, then the whole call fails as transient so the caller can try again later.
 */
export function createSqsJobQueue(sqs: SQSClient, queueUrl: string): JobQueue {
  async function sendBatch(jobs: QueueJob[]): Promise<QueueJob[]> {
    let out: SendMessageBatchCommandOutput;
    // Loaded on the first send, so a process that sends no job never parses the SQS commands.
    const { SendMessageBatchCommand } = await import('@aws-sdk/client-sqs');
    try {
      out = await sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: jobs.map((job, index) => ({ Id: String(index), MessageBody: JSON.stringify(job) })),
        }),
      );
    } catch (error) {
      throw new TransientError('queue-unavailable', `sending ${jobs.length} jobs failed`, { cause: error });
    }
    return (out.Failed ?? []).flatMap((entry) => {
      const job = jobs[Number(entry.Id)];
      return job === undefined ? [] : [job];
    });
  }

  return {
    async sendJobs(jobs) {
      for (let start = 0; start < jobs.length; start += maxBatch) {
        const batch = jobs.slice(start, start + maxBatch);
        const failed = await sendBatch(batch);
        if (failed.length > 0 && (await sendBatch(failed)).length > 0) {
          throw new TransientError('queue-unavailable', `the queue refused some of ${batch.length} jobs`);
        }
      }
    },
  };
}
