import type { CldistConfig, UpdateConfig } from '../config.ts';
import { findChannel } from '../config-sources.ts';
import type { ReleaseRef, StreamRef, UpdatePayloadItem } from '../ledger/ledger.ts';
import { configuredPayloads, updatePayloadUrl } from '../update/origin.ts';
import type { MirrorDeps } from './deps.ts';
import type { UpdatePayloadJob } from './update-payload-job.ts';

const stalledPerRun = 200;

function jobOf(update: UpdateConfig, stream: StreamRef, version: string, name: string): UpdatePayloadJob {
  const { source, channel, board } = stream;
  return {
    v: 1,
    kind: 'update-payload',
    source,
    channel,
    board,
    version,
    name,
    url: updatePayloadUrl(update, board, version, name),
  };
}

/**
 * The update payload jobs of a release the poller just claimed: the main payload and each configured
 * one, planned in the ledger first. A board and version is planned once, so a version that a second
 * channel names later gets no second set of jobs.
 */
export async function planUpdatePayloadJobs(
  release: ReleaseRef,
  deps: Pick<MirrorDeps, 'ledger'>,
  config: CldistConfig,
): Promise<UpdatePayloadJob[]> {
  const update = config.update;
  if (update === undefined) return [];
  const { source, channel, board, version } = release;
  const stream = { source, channel, board };
  const planned = await deps.ledger.planPayloads(stream, version, configuredPayloads(update));
  return planned.map((name) => jobOf(update, stream, version, name));
}

/** The job for a planned payload, with URLs from the current config; none once it left the config. */
function resendJob(config: CldistConfig, item: UpdatePayloadItem): UpdatePayloadJob | undefined {
  const update = config.update;
  if (update === undefined || !configuredPayloads(update).includes(item.name)) return undefined;
  if (findChannel(config.sources, item.source, item.channel) === undefined) return undefined;
  const { source, channel, board } = item;
  return jobOf(update, { source, channel, board }, item.version, item.name);
}

/**
 * Sends the jobs again of payloads planned and untouched since `before` (a lost send, a dead-lettered
 * job); each is taken with a conditional write, so two sweeps send one job. Returns how many went out.
 */
export async function resendStalledPayloads(
  deps: Pick<MirrorDeps, 'ledger' | 'jobs' | 'logger'>,
  config: CldistConfig,
  before: Date,
): Promise<number> {
  if (config.update === undefined) return 0;
  const stalled = await deps.ledger.listStalledPayloads(before, stalledPerRun);
  const jobs: UpdatePayloadJob[] = [];
  for (const item of stalled) {
    const job = resendJob(config, item);
    if (job !== undefined && (await deps.ledger.touchStalledPayload(item, item.updatedAt))) jobs.push(job);
  }
  if (jobs.length > 0) {
    await deps.jobs.sendJobs(jobs);
    deps.logger.warn('poll.resent_update_payloads', {
      payloads: jobs.map((job) => `${job.board}/${job.version}/${job.name}`),
    });
  }
  return jobs.length;
}

/**
 * Plans the payloads of each channel's current version that no poll planned yet: a mirror that gets an
 * `update` section after its releases were detected serves updates for them from the next poll on. A
 * payload already planned costs one refused conditional write; one planned here gets its job.
 */
export async function planPayloadsOfCurrent(
  current: readonly (StreamRef & { version?: string })[],
  deps: Pick<MirrorDeps, 'ledger' | 'jobs' | 'logger'>,
  config: CldistConfig,
): Promise<number> {
  if (config.update === undefined) return 0;
  const jobs: UpdatePayloadJob[] = [];
  for (const { source, channel, board, version } of current) {
    if (version !== undefined)
      jobs.push(...(await planUpdatePayloadJobs({ source, channel, board, version }, deps, config)));
  }
  if (jobs.length > 0) {
    await deps.jobs.sendJobs(jobs);
    deps.logger.info('poll.update_payloads_planned', {
      payloads: jobs.map((job) => `${job.board}/${job.version}/${job.name}`),
    });
  }
  return jobs.length;
}
