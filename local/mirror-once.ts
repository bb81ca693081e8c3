import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { type CldistConfig, loadConfigFile, parseConfig } from '../shared/config.ts';
import { ConfigError, describeError } from '../shared/errors.ts';
import type { ArtifactRecord, Ledger, ReleaseRef } from '../shared/ledger/ledger.ts';
import type { PollReport } from '../shared/mirror/poller.ts';
import { primaryFingerprintsOf } from '../shared/verify/keyring.ts';
import type { TransferTracker } from './progress.ts';
import type { Logger } from './runtime/log.ts';
import type { ServeHandle } from './serve/index.ts';

/** The `cldist mirror --once` flags that change the config; each error names the flag it came from. */
export interface MirrorConfigFlags {
  config?: string;
  origin?: string;
  channel?: string[];
  board?: string;
  artifact?: string[];
  keyring?: string[];
}

/**
 * Armored key files whose primaries are all trusted: a person who passes a key file on the command line
 * means "trust this", and naming its fingerprint again (as `verify --trust` asks) would add nothing.
 */
export async function trustKeyFiles(
  paths: string[],
): Promise<CldistConfig['keyring']['trustedFingerprints']> {
  const texts = await Promise.all(
    paths.map(async (path) => {
      try {
        return await readFile(path, 'utf8');
      } catch (cause) {
        throw new ConfigError(`--keyring ${path}: cannot read it: ${(cause as Error).message}`, { cause });
      }
    }),
  );
  return primaryFingerprintsOf(
    texts,
    paths.map((path) => `--keyring ${path}`),
  );
}

/** The config file (or the built-in one) with the flags applied, validated once like any config. */
export async function mirrorConfigFromFlags(flags: MirrorConfigFlags): Promise<CldistConfig> {
  const base = flags.config === undefined ? parseConfig({}, 'default config') : loadConfigFile(flags.config);
  if (flags.origin !== undefined) {
    parseConfig({ channels: [{ name: 'origin', baseUrl: flags.origin }] }, `--origin ${flags.origin}`);
  }
  let channels: Array<{ name: string; baseUrl?: string }> = base.channels;
  if (flags.channel !== undefined) {
    channels = [...new Set(flags.channel)].map((name) => {
      const known = base.channels.find((c) => c.name === name);
      if (known !== undefined) return known;
      parseConfig({ channels: [{ name }] }, `--channel ${name}`);
      return { name };
    });
  }
  if (flags.origin !== undefined) {
    const baseUrl = flags.origin;
    channels = channels.map((channel) => ({ ...channel, baseUrl }));
  }
  const boards =
    flags.board === undefined
      ? base.boards
      : parseConfig({ boards: [flags.board] }, `--board ${flags.board}`).boards;
  const artifacts =
    flags.artifact === undefined
      ? base.artifacts
      : parseConfig(
          { artifacts: flags.artifact.map((name) => ({ name, required: true })) },
          `--artifact ${flags.artifact.join(' --artifact ')}`,
        ).artifacts;
  const keyring =
    flags.keyring === undefined
      ? base.keyring
      : {
          ...base.keyring,
          files: flags.keyring.map((path) => resolve(path)),
          trustedFingerprints: await trustKeyFiles(flags.keyring),
        };
  return parseConfig({ ...base, channels, boards, artifacts, keyring }, 'config with the command-line flags');
}

/** One required artifact of a release this run was responsible for that did not end verified. */
export interface MirrorProblem {
  channel: string;
  board: string;
  version?: string;
  artifact?: string;
  /** `failed_verification`, `missing`, `pending` (gave up on retries or interrupted), or `poll_failed`. */
  state: string;
  detail?: string;
}

export interface MirrorOnceReport {
  /** Every required artifact of every release this run claimed ended verified, and every origin answered. */
  ok: boolean;
  /** Releases claimed by this run's poll. */
  newReleases: ReleaseRef[];
  verifiedArtifacts: number;
  problems: MirrorProblem[];
  /** A signal cut the run short; the queue was not drained. */
  interrupted: boolean;
  /**
   * Whether the run started the queue stand-in and its workers, which it does only to send a job or an
   * event: false when there was nothing new to mirror.
   */
  queueStarted: boolean;
}

export interface MirrorOnceOptions {
  config: CldistConfig;
  dataDir: string;
  logger: Logger;
  tracker: TransferTracker;
  console: { format: 'json' | 'pretty'; writeLine: (line: string) => void };
  /** Aborting stops waiting for the queue; in-flight transfers are aborted by the shutdown. */
  signal?: AbortSignal;
  region?: string;
}

function problemOf(record: ArtifactRecord): MirrorProblem {
  return {
    channel: record.channel,
    board: record.board,
    version: record.version,
    artifact: record.artifact,
    state: record.state,
    detail: record.lastError,
  };
}

async function judge(ledger: Ledger, config: CldistConfig, poll: PollReport | undefined) {
  const problems: MirrorProblem[] = [];
  const newReleases: ReleaseRef[] = [];
  let verifiedArtifacts = 0;
  for (const result of poll?.results ?? []) {
    if (result.outcome === 'error') {
      problems.push({
        channel: result.channel,
        board: result.board,
        state: 'poll_failed',
        detail: result.error,
      });
    } else if (result.outcome === 'new-release' && result.version !== undefined) {
      newReleases.push({ channel: result.channel, board: result.board, version: result.version });
    }
  }
  const isNew = (r: ReleaseRef) =>
    newReleases.some((n) => n.channel === r.channel && n.board === r.board && n.version === r.version);
  for (const release of newReleases) {
    const detail = await ledger.getRelease(release);
    for (const record of detail?.artifactStates ?? []) {
      if (record.state === 'verified') verifiedArtifacts++;
      else if (record.required) problems.push(problemOf(record));
    }
  }
  // Older releases are judged only for work left behind (a run killed or given up on): their terminal
  // failures were reported by the run that reached them, and would otherwise fail every later run.
  for (const channel of config.channels) {
    for (const board of config.boards) {
      for (const release of await ledger.listReleases(channel.name, board)) {
        if (release.finalizedAt !== undefined || isNew(release)) continue;
        const detail = await ledger.getRelease(release);
        for (const record of detail?.artifactStates ?? []) {
          if (record.required && record.state === 'pending') problems.push(problemOf(record));
        }
      }
    }
  }
  return { problems, newReleases, verifiedArtifacts };
}

export interface OnceOutcome extends MirrorOnceReport {
  /** Why the queue could not drain (mirroring paused for lack of disk space), if it could not. */
  paused?: unknown;
}

/**
 * The one "poll once, drain, judge" path of `cldist serve --once` and `cldist mirror --once`: the start-up
 * poll has run; this waits until no job is queued, in flight or waiting for a retry (or `signal` aborts, or
 * mirroring pauses), then judges every release the poll claimed and the work older runs left behind.
 */
export async function runOnce(
  handle: Pick<ServeHandle, 'drain' | 'ledger' | 'lastPoll' | 'queueStarted'>,
  config: CldistConfig,
  signal?: AbortSignal,
): Promise<OnceOutcome> {
  const aborted = new Promise<{ how: 'interrupted' }>((done) => {
    if (signal?.aborted === true) done({ how: 'interrupted' });
    signal?.addEventListener('abort', () => done({ how: 'interrupted' }), { once: true });
  });
  const drained = handle.drain().then(
    () => ({ how: 'drained' as const }),
    (error: unknown) => ({ how: 'paused' as const, error }),
  );
  const ended = await Promise.race([drained, aborted]);
  const judged = await judge(handle.ledger, config, handle.lastPoll());
  const interrupted = ended.how === 'interrupted';
  return {
    ok: ended.how === 'drained' && judged.problems.length === 0,
    interrupted,
    queueStarted: handle.queueStarted(),
    ...(ended.how === 'paused' ? { paused: ended.error } : {}),
    ...judged,
  };
}

/** `cldist mirror --once`: `runOnce` over the runner without its HTTP server, for cron jobs and CI. */
export async function mirrorOnce(options: MirrorOnceOptions): Promise<MirrorOnceReport> {
  const { config, logger } = options;
  const { startServe } = await import('./serve/index.ts');
  const handle = await startServe({
    config,
    dataDir: options.dataDir,
    host: config.api.host,
    port: 0,
    http: false,
    queue: 'on-demand',
    concurrency: config.worker.concurrency,
    region: options.region,
    logger,
    tracker: options.tracker,
    console: options.console,
  });
  try {
    const { paused, ...report } = await runOnce(handle, config, options.signal);
    if (paused !== undefined) throw paused;
    if (report.interrupted) logger.warn('mirror.interrupted', {});
    return report;
  } catch (error) {
    logger.error('mirror.failed', { cause: describeError(error) });
    throw error;
  } finally {
    await handle.close();
  }
}
