import type { CldistConfig } from '../config.ts';
import { findChannel, pollTargets, type SourceTarget } from '../config-sources.ts';
import { describeError, PermanentError } from '../errors.ts';
import { conditionalGet, NotFoundError } from '../http/fetch.ts';
import type { ArtifactPlan, ArtifactRecord, PollState, StreamRef } from '../ledger/ledger.ts';
import type { MirrorJob } from '../messages.ts';
import { artifactUrls, channelOrigin, currentVersionUrl } from '../release/layout.ts';
import { parseVersionFile } from '../release/version-file.ts';
import { runRetention } from '../retention/run.ts';
import { metricNames } from '../telemetry-names.ts';
import type { MirrorDeps } from './deps.ts';
import { finalizeIfDone } from './finalize.ts';
import {
  planPayloadsOfCurrent,
  planUpdatePayloadJobs,
  resendStalledPayloads,
} from './update-payload-poll.ts';

export type PollOutcome =
  /**
   * 304, or the same answer as last time: nothing written (with `update` configured, the current version's
   * payloads are planned if no poll planned them yet).
   */
  | 'unchanged'
  /** A version already claimed (by an earlier poll or a concurrent poller). */
  | 'seen'
  /** Claimed here; its jobs were sent. */
  | 'new-release'
  /**
   * `current/version.txt` answered 404 or 410: upstream does not publish this board on this channel (arm64
   * on an old LTS stream, say). Not an error: nothing is broken and retrying will not help.
   */
  | 'not-published'
  | 'error';

export interface ChannelPollResult {
  source: string;
  channel: string;
  board: string;
  outcome: PollOutcome;
  version?: string;
  jobsSent?: number;
  error?: string;
}

export interface PollReport {
  results: ChannelPollResult[];
  /**
   * Jobs sent again for artifacts and update payloads that made no progress within
   * `schedule.stallAfterMinutes`; URLs come from the current config, so a changed origin applies to old work too.
   */
  resent: number;
  /** Releases the sweep finalized after their finalizer gave up (or died) holding the lease. */
  refinalized: number;
  /** Signing keys that expire within the warning window (the event goes out once a day per key). */
  expiringKeys: string[];
  /** Artifacts awaiting trust that were sent again because the trust changed since their refusal. */
  requeuedForTrust: number;
  /** Releases deleted by retention: prunes left half-done by an earlier run, and streams over `keepReleases`. */
  pruned: number;
  /** Parts of the retention sweep that failed (logged as `retention.prune_failed`). */
  pruneFailures: number;
}

const stalledPerRun = 200;
/** How far back the finalize sweep looks; a release stranded longer than this needs an operator. */
const strandedWindowDays = 7;

function jobFor(stream: StreamRef, version: string, plan: ArtifactPlan): MirrorJob {
  return {
    v: 1,
    source: stream.source,
    channel: stream.channel,
    board: stream.board,
    version,
    artifact: plan.name,
    url: plan.url,
    signatureUrl: plan.signatureUrl,
  };
}

/**
 * Warns once per source, channel and board, when it goes from published (or never polled) to not published; the
 * poll state remembers since when, so later polls and restarts stay quiet until it has been published
 * again (a successful poll writes the state without the mark). Two pollers racing on the first 404 may
 * both warn: a duplicate warning costs less than a conditional write on every poll.
 */
async function notPublished(
  base: StreamRef,
  url: string,
  previous: PollState | undefined,
  deps: MirrorDeps,
): Promise<ChannelPollResult> {
  const now = deps.clock().toISOString();
  if (previous?.notPublishedSince === undefined) {
    deps.logger.warn('poll.not_published', { ...base, url });
  }
  // No validators kept: a 304 against them must not hide that the file is back.
  await deps.ledger.savePollState({
    ...base,
    ...(previous?.lastVersion === undefined ? {} : { lastVersion: previous.lastVersion }),
    checkedAt: now,
    notPublishedSince: previous?.notPublishedSince ?? now,
  });
  return { ...base, outcome: 'not-published' };
}

/** The version file names its release with the source's key: a CoreOS file on a Flatcar source is refused. */
function releaseVersion(body: Uint8Array | string, target: SourceTarget, config: CldistConfig): string {
  const parsed = parseVersionFile(body, config.limits.maxVersionFileBytes);
  const key = `${parsed.prefix}_VERSION_ID`;
  if (key !== target.source.versionKey) {
    throw new PermanentError(
      'version-key-mismatch',
      `version.txt names its release with ${key}, but source "${target.source.name}" expects ${target.source.versionKey}; fix the source's versionKey or baseUrl`,
    );
  }
  return parsed.version;
}

async function pollOne(
  target: SourceTarget,
  deps: MirrorDeps,
  config: CldistConfig,
): Promise<ChannelPollResult> {
  const { source, channel, board } = target;
  const base: StreamRef = { source: source.name, channel: channel.name, board };
  const previous = await deps.ledger.getPollState(base);
  const url = currentVersionUrl(source, channel, board);
  const answer = await conditionalGet(url, {
    etag: previous?.etag,
    lastModified: previous?.lastModified,
    maxBytes: config.limits.maxVersionFileBytes,
    timeoutMs: config.limits.requestTimeoutSeconds * 1000,
    allowedOrigins: [channelOrigin(source, channel, board)],
  }).catch((error: unknown) => {
    if (error instanceof NotFoundError) return { status: 'not-published' as const };
    throw error;
  });
  if (answer.status === 'not-published') return notPublished(base, url, previous, deps);
  if (answer.status === 'unchanged') return { ...base, outcome: 'unchanged', version: previous?.lastVersion };
  const version = releaseVersion(answer.body, target, config);
  if (
    previous !== undefined &&
    previous.lastVersion === version &&
    previous.etag === answer.etag &&
    previous.lastModified === answer.lastModified
  ) {
    return { ...base, outcome: 'unchanged', version };
  }
  const release = { ...base, version };
  const plans: ArtifactPlan[] = source.artifacts.map((artifact) => ({
    name: artifact.name,
    required: artifact.required,
    ...artifactUrls(source, channel, board, version, artifact.name),
  }));
  let outcome: PollOutcome = 'seen';
  let jobsSent = 0;
  if (previous?.lastVersion !== version) {
    const claimed = await deps.ledger.claimRelease(release, plans);
    // Planned whether or not this poll claimed the release: each payload is planned once, by whichever poll
    // gets there first. A failed plan still lets the artifact jobs go, then fails the poll before its state
    // is saved, so the next poll plans the payloads.
    let planFailure: { error: unknown } | undefined;
    const payloadJobs = await planUpdatePayloadJobs(release, deps, config).catch((error: unknown) => {
      planFailure = { error };
      return [];
    });
    const jobs = [...(claimed ? plans.map((plan) => jobFor(base, version, plan)) : []), ...payloadJobs];
    if (jobs.length > 0) await deps.jobs.sendJobs(jobs);
    jobsSent = jobs.length;
    if (claimed) deps.logger.info('release.detected', { ...release, jobs: jobsSent });
    if (planFailure !== undefined) throw planFailure.error;
    if (claimed) outcome = 'new-release';
  }
  await deps.ledger.savePollState({
    ...base,
    etag: answer.etag,
    lastModified: answer.lastModified,
    lastVersion: version,
    checkedAt: deps.clock().toISOString(),
  });
  return { ...base, outcome, version, jobsSent };
}

/** Open work untouched since this moment counts as stalled: `schedule.stallAfterMinutes` ago. */
export function stallCutoff(deps: Pick<MirrorDeps, 'clock'>, config: CldistConfig): Date {
  return new Date(deps.clock().getTime() - config.schedule.stallAfterMinutes * 60_000);
}

/** The job for an artifact the ledger already knows; undefined when its source or channel left the config. */
function resendJob(config: CldistConfig, record: ArtifactRecord): MirrorJob | undefined {
  const found = findChannel(config.sources, record.source, record.channel);
  if (found === undefined) return undefined;
  const urls = artifactUrls(found.source, found.channel, record.board, record.version, record.artifact);
  return jobFor(record, record.version, { ...record, ...urls, name: record.artifact });
}

function jobName(job: MirrorJob): string {
  return `${job.source}/${job.channel}/${job.board}/${job.version}/${job.artifact}`;
}

/**
 * Sends the jobs again of artifacts still open and untouched since `before` (each taken with a conditional
 * write, so two sweeps send one job); URLs come from the current config. Returns how many went out.
 */
export async function resendStalled(
  deps: MirrorDeps,
  config: CldistConfig,
  before: Date = stallCutoff(deps, config),
): Promise<number> {
  const stalled = await deps.ledger.listStalled(before, stalledPerRun);
  const jobs: MirrorJob[] = [];
  for (const record of stalled) {
    const job = resendJob(config, record);
    if (job !== undefined && (await deps.ledger.touchStalled(record, record.updatedAt))) jobs.push(job);
  }
  if (jobs.length > 0) {
    await deps.jobs.sendJobs(jobs);
    deps.logger.warn('poll.resent_unfinished', { artifacts: jobs.map(jobName) });
  }
  return jobs.length;
}

/**
 * Every artifact of a release may be done while no job is left to finalize it: the finalizer failed and
 * could not give its lease back, and the redelivered job found the lease still held and was acknowledged.
 * Releases claimed more than `stallAfterMinutes` and less than `strandedWindowDays` ago and not yet
 * announced get their finalize retried here; `finalizeIfDone` is a no-op for a release that is not done,
 * already announced, or leased by a live worker. A release held by a refused required artifact stays
 * unannounced for good: the window keeps those from being re-read on every poll for ever, and from
 * crowding newer stranded releases out of the per-run limit.
 */
export async function finalizeStranded(
  deps: MirrorDeps,
  config: CldistConfig,
  before: Date = stallCutoff(deps, config),
): Promise<number> {
  const since = new Date(before.getTime() - strandedWindowDays * 86_400_000);
  const releases = await deps.ledger.listUnannounced(since, before, stalledPerRun);
  let finalized = 0;
  for (const release of releases) {
    try {
      if ((await finalizeIfDone(release, deps, config)).finalized) finalized++;
    } catch (error) {
      deps.logger.error('finalize.sweep_failed', { ...release, error: describeError(error) });
    }
  }
  if (finalized > 0) deps.logger.warn('finalize.stranded_finalized', { releases: finalized });
  return finalized;
}

const awaitingPerRun = 500;

/**
 * Reads the trust (one conditional read when unchanged) and sends again every artifact that was refused for
 * an unknown signer under another trust version. Each moves back to pending first (a conditional write, so
 * two pollers send one job); if the send then fails, the stalled sweep of a later run sends it.
 */
async function requeueForTrust(deps: MirrorDeps, config: CldistConfig): Promise<number> {
  const trust = await deps.signatures.refreshTrust();
  const waiting = await deps.ledger.listAwaitingTrust(awaitingPerRun);
  const jobs: MirrorJob[] = [];
  for (const record of waiting) {
    if (record.trustVersion === trust.version) continue;
    const job = resendJob(config, record);
    if (job !== undefined && (await deps.ledger.requeueArtifact(record, ['awaiting_trust']))) jobs.push(job);
  }
  if (jobs.length > 0) {
    await deps.jobs.sendJobs(jobs);
    deps.logger.warn('trust.artifacts_resent', { trustVersion: trust.version, artifacts: jobs.map(jobName) });
  }
  return jobs.length;
}

async function warnExpiringKeys(deps: MirrorDeps, config: CldistConfig): Promise<string[]> {
  const now = deps.clock();
  const status = await deps.signatures.status(now, config.keyring.expiryWarningDays);
  const day = now.toISOString().slice(0, 10);
  if (status.expiringSoon.length > 0) {
    deps.metrics?.addMetric(metricNames.signingKeyExpiring, 'Count', status.expiringSoon.length);
  }
  for (const key of status.expiringSoon) {
    if (!(await deps.ledger.recordKeyWarning(key.signingKeyFingerprint, day))) continue;
    deps.logger.warn('keyring.signing_key_expiring', { ...key });
    await deps.notifier.publish({
      event: 'signing_key.expiring',
      source: '*',
      channel: '*',
      board: '*',
      at: now.toISOString(),
      detail: {
        primaryKeyFingerprint: key.primaryKeyFingerprint,
        signingKeyFingerprint: key.signingKeyFingerprint,
        expires: key.expires?.toISOString(),
      },
    });
  }
  return status.expiringSoon.map((key) => key.signingKeyFingerprint);
}

export interface ResendReport {
  /** Jobs sent again. */
  resent: number;
  /** Releases whose stranded finalize completed. */
  refinalized: number;
}

/**
 * Resending stalled work on its own, without polling: the jobs of every artifact open since `before`, and
 * the finalize of releases done since then but never announced. A host whose queue was lost (one machine
 * keeps it in memory) calls it with "now" at start; chaos calls it when its queue went quiet.
 */
export async function resendOpenWork(
  deps: MirrorDeps,
  config: CldistConfig,
  before: Date = stallCutoff(deps, config),
): Promise<ResendReport> {
  let resent = 0;
  try {
    resent = await resendStalled(deps, config, before);
  } catch (error) {
    deps.logger.error('poll.stalled_sweep_failed', { error: describeError(error) });
  }
  try {
    resent += await resendStalledPayloads(deps, config, before);
  } catch (error) {
    deps.logger.error('poll.stalled_sweep_failed', { what: 'update payloads', error: describeError(error) });
  }
  let refinalized = 0;
  try {
    refinalized = await finalizeStranded(deps, config, before);
  } catch (error) {
    deps.logger.error('finalize.sweep_failed', { error: describeError(error) });
  }
  return { resent, refinalized };
}

/**
 * One scheduled run. Every source's channels and boards are polled concurrently and fails on its own: one upstream's
 * 5xx or timeout is reported in its result and never stops the others. A new version is claimed in the
 * ledger before its jobs go out, so two concurrent runs send one set of jobs; if the send fails after the
 * claim, the stalled-artifact sweep of a later run sends them.
 */
export async function runPoll(deps: MirrorDeps, config: CldistConfig): Promise<PollReport> {
  const results = await Promise.all(
    pollTargets(config.sources).map((target) =>
      pollOne(target, deps, config).catch((error: unknown): ChannelPollResult => {
        const message = describeError(error);
        const stream = { source: target.source.name, channel: target.channel.name, board: target.board };
        const url = currentVersionUrl(target.source, target.channel, target.board);
        deps.logger.warn('poll.origin_unreachable', { ...stream, url, cause: message });
        return { ...stream, outcome: 'error', error: message };
      }),
    ),
  );
  try {
    await planPayloadsOfCurrent(
      results.filter((result) => result.outcome === 'unchanged'),
      deps,
      config,
    );
  } catch (error) {
    deps.logger.error('update_payload.plan_failed', { error: describeError(error) });
  }
  const { resent, refinalized } = await resendOpenWork(deps, config);
  let requeuedForTrust = 0;
  try {
    requeuedForTrust = await requeueForTrust(deps, config);
  } catch (error) {
    deps.logger.error('trust.sweep_failed', { error: describeError(error) });
  }
  let expiringKeys: string[] = [];
  try {
    expiringKeys = await warnExpiringKeys(deps, config);
  } catch (error) {
    deps.logger.error('keyring.check_failed', { error: describeError(error) });
  }
  const retention = await runRetention(deps, config);
  return {
    results,
    resent,
    refinalized,
    expiringKeys,
    requeuedForTrust,
    pruned: retention.pruned,
    pruneFailures: retention.failures,
  };
}
