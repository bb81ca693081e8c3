import type { CldistConfig } from '../config.ts';
import { findChannel } from '../config-sources.ts';
import { PermanentError } from '../errors.ts';
import type { ArtifactRecord, ArtifactState, Ledger, ReleaseDetail, ReleaseRef } from '../ledger/ledger.ts';
import { releaseRefOf } from '../ledger/records.ts';
import type { MirrorJob } from '../messages.ts';
import { artifactUrls } from '../release/layout.ts';
import type { JobQueue } from './deps.ts';
import { type ReleaseState, releaseState } from './release-state.ts';

export interface ArtifactSummary {
  name: string;
  state: ArtifactState;
  required: boolean;
  /** For `awaiting_trust`: the key ID the trust must gain. */
  keyId?: string;
  error?: string;
}

export interface ReleaseSummary extends ReleaseRef {
  state: ReleaseState;
  claimedAt: string;
  finalizedAt?: string;
  artifacts: ArtifactSummary[];
}

export interface ReleaseAdminDeps {
  ledger: Pick<Ledger, 'listReleases' | 'listPruning' | 'getRelease' | 'requeueArtifact'>;
  jobs: JobQueue;
}

export class ReleaseNotFoundError extends PermanentError {
  constructor(ref: ReleaseRef, why = 'was never claimed') {
    super('release-not-found', `release ${ref.source}/${ref.channel}/${ref.board}/${ref.version} ${why}`);
    this.name = 'ReleaseNotFoundError';
  }
}

/** A retry that would undo a final refusal (a tampered or badly signed artifact) needs the operator's word. */
export class ConfirmationRequiredError extends PermanentError {
  readonly artifacts: string[];
  constructor(ref: ReleaseRef, artifacts: string[]) {
    super(
      'confirmation-required',
      `${artifacts.join(', ')} of ${ref.source}/${ref.channel}/${ref.board}/${ref.version} failed verification for good; confirm to fetch and verify again`,
    );
    this.name = 'ConfirmationRequiredError';
    this.artifacts = artifacts;
  }
}

function summary(detail: ReleaseDetail): ReleaseSummary {
  return {
    ...releaseRefOf(detail),
    state: releaseState(detail),
    claimedAt: detail.claimedAt,
    ...(detail.finalizedAt === undefined ? {} : { finalizedAt: detail.finalizedAt }),
    artifacts: detail.artifacts.map((name) => {
      const record = detail.artifactStates.find((a) => a.artifact === name);
      return {
        name,
        state: record?.state ?? 'pending',
        required: record?.required ?? detail.required.includes(name),
        ...(record?.awaitingIssuer === undefined ? {} : { keyId: record.awaitingIssuer }),
        ...(record?.lastError === undefined || record.state === 'verified'
          ? {}
          : { error: record.lastError }),
      };
    }),
  };
}

/**
 * Every claimed release with its state, oldest first per source, channel and board; `state` narrows the
 * list. Releases retention is deleting are listed only for `state: 'pruning'`: they are no longer in the
 * mirror.
 */
export async function listReleaseSummaries(
  filter: { state?: ReleaseState; source?: string; channel?: string; board?: string },
  deps: Pick<ReleaseAdminDeps, 'ledger'>,
): Promise<ReleaseSummary[]> {
  const { state: _state, ...stream } = filter;
  const records =
    filter.state === 'pruning'
      ? await deps.ledger.listPruning(stream)
      : await deps.ledger.listReleases(stream);
  const out: ReleaseSummary[] = [];
  for (const record of records) {
    const detail = await deps.ledger.getRelease(record);
    if (detail === undefined) continue;
    const item = summary(detail);
    if (filter.state === undefined || item.state === filter.state) out.push(item);
  }
  return out;
}

export interface RetryResult {
  release: ReleaseSummary;
  /** Artifacts whose jobs were sent now. */
  requeued: string[];
}

const retriable: ArtifactState[] = ['missing', 'awaiting_trust'];

function jobOf(ref: ReleaseRef, record: ArtifactRecord, config: CldistConfig): MirrorJob | undefined {
  const found = findChannel(config.sources, ref.source, ref.channel);
  if (found === undefined) return undefined;
  return {
    v: 1,
    ...ref,
    artifact: record.artifact,
    ...artifactUrls(found.source, found.channel, ref.board, ref.version, record.artifact),
  };
}

/**
 * Sends the jobs of a release's open or refused artifacts now, instead of at the next poll or stalled sweep:
 * pending ones as they are, missing and awaiting-trust ones back to pending first. A final refusal
 * (`failed_verification`) is reopened only with `confirmFinal`; without it nothing is sent and the error
 * names the artifacts. A finalized release has nothing to retry.
 */
export async function retryRelease(
  ref: ReleaseRef,
  options: { confirmFinal: boolean },
  deps: ReleaseAdminDeps,
  config: CldistConfig,
): Promise<RetryResult> {
  const detail = await deps.ledger.getRelease(ref);
  if (detail === undefined) throw new ReleaseNotFoundError(ref);
  if (detail.pruningSince !== undefined) {
    throw new ReleaseNotFoundError(ref, 'is being deleted by retention (keepReleases)');
  }
  const records = detail.artifacts.flatMap((name) =>
    detail.artifactStates.filter((a) => a.artifact === name),
  );
  const open = detail.finalizedAt === undefined ? records.filter((a) => a.state !== 'verified') : [];
  const final = open.filter((a) => a.state === 'failed_verification').map((a) => a.artifact);
  if (final.length > 0 && !options.confirmFinal) throw new ConfirmationRequiredError(ref, final);
  const jobs: MirrorJob[] = [];
  for (const record of open) {
    const from = record.state === 'failed_verification' ? ['failed_verification' as const] : retriable;
    if (record.state !== 'pending' && !(await deps.ledger.requeueArtifact(record, from))) continue;
    const job = jobOf(ref, record, config);
    if (job !== undefined) jobs.push(job);
  }
  if (jobs.length > 0) await deps.jobs.sendJobs(jobs);
  const after = (await deps.ledger.getRelease(ref)) ?? detail;
  return { release: summary(after), requeued: jobs.map((job) => job.artifact) };
}
