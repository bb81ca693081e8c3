import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { type CldistConfig, loadConfigFile, parseConfig } from '../shared/config.ts';
import { pollTargets, type SourceConfig, type SourceInput } from '../shared/config-sources.ts';
import { ConfigError, describeError } from '../shared/errors.ts';
import type { ArtifactRecord, Ledger, ReleaseRef } from '../shared/ledger/ledger.ts';
import { artifactRefOf } from '../shared/ledger/records.ts';
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

/** A flag's value as a one-source config would hold it; `flag` names it in the error. */
interface FlagCheck {
  source: Omit<SourceInput, 'name'>;
  flag: string;
}

/** A one-source config around `source`, parsed only to check a flag's value; errors name the flag. */
function checkFlag({ source, flag }: FlagCheck): SourceConfig {
  const [checked] = parseConfig({ sources: [{ ...source, name: 'flag' }] }, flag).sources;
  if (checked === undefined) throw new ConfigError(`${flag}: not a valid value`);
  return checked;
}

/**
 * Every flag's value checked in one parse, a source each, since a config parse is the costly part of a
 * start with nothing to do. Only when that parse fails is each checked alone, in order, so the error is
 * the one the first bad flag gives.
 */
function checkFlags(checks: FlagCheck[]): SourceConfig[] {
  if (checks.length <= 1) return checks.map(checkFlag);
  try {
    const sources = checks.map(({ source }, i) => ({ ...source, name: `flag-${i}` }));
    const checked = parseConfig({ sources }, 'the command-line flags').sources;
    if (checked.length === checks.length) return checked;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
  }
  return checks.map(checkFlag);
}

/**
 * `--channel` keeps the named channels of every source; a name no source has joins the first source.
 * `--origin`, `--board` and `--artifact` then apply to every source and channel left.
 */
function applySourceFlags(sources: SourceConfig[], flags: MirrorConfigFlags): SourceInput[] {
  const { origin, board, artifact } = flags;
  const wanted = flags.channel === undefined ? undefined : [...new Set(flags.channel)];
  const checks: FlagCheck[] = (wanted ?? []).map((name) => ({
    source: { channels: [{ name }] },
    flag: `--channel ${name}`,
  }));
  if (origin !== undefined) checks.push({ source: { baseUrl: origin }, flag: `--origin ${origin}` });
  const boardAt = board === undefined ? -1 : checks.length;
  if (board !== undefined) {
    checks.push({ source: { channels: [{ name: 'x', boards: [board] }] }, flag: `--board ${board}` });
  }
  const artifactsAt = artifact === undefined ? -1 : checks.length;
  if (artifact !== undefined) {
    checks.push({
      source: { artifacts: artifact.map((name) => ({ name, required: true })) },
      flag: `--artifact ${artifact.join(' --artifact ')}`,
    });
  }
  const checked = checkFlags(checks);
  let out: SourceInput[] = sources;
  if (wanted !== undefined) {
    const known = new Set(sources.flatMap((s) => s.channels.map((c) => c.name)));
    const added = wanted.filter((name) => !known.has(name)).map((name) => ({ name }));
    out = sources
      .map((s, i) => ({
        ...s,
        channels: [...s.channels.filter((c) => wanted.includes(c.name)), ...(i === 0 ? added : [])],
      }))
      .filter((s) => s.channels.length > 0);
  }
  const boards = checked[boardAt]?.channels[0]?.boards;
  const artifacts = checked[artifactsAt]?.artifacts;
  return out.map((s) => ({
    ...s,
    ...(artifacts === undefined ? {} : { artifacts }),
    channels: (s.channels ?? []).map((c) => ({
      ...c,
      ...(origin === undefined ? {} : { baseUrl: origin }),
      ...(boards === undefined ? {} : { boards }),
    })),
  }));
}

/** The config file (or the built-in one) with the flags applied, validated once like any config. */
export async function mirrorConfigFromFlags(flags: MirrorConfigFlags): Promise<CldistConfig> {
  const base = flags.config === undefined ? parseConfig({}, 'default config') : loadConfigFile(flags.config);
  const sources = applySourceFlags(base.sources, flags);
  const keyring =
    flags.keyring === undefined
      ? base.keyring
      : {
          ...base.keyring,
          files: flags.keyring.map((path) => resolve(path)),
          trustedFingerprints: await trustKeyFiles(flags.keyring),
        };
  // Keys passed on the command line replace the keyring, so a source's own key list no longer applies.
  const keyed = flags.keyring === undefined ? sources : sources.map(({ keys: _keys, ...s }) => s);
  return parseConfig({ ...base, sources: keyed, keyring }, 'config with the command-line flags');
}

/** One required artifact of a release this run was responsible for that did not end verified. */
export interface MirrorProblem {
  source: string;
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
    ...artifactRefOf(record),
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
        source: result.source,
        channel: result.channel,
        board: result.board,
        state: 'poll_failed',
        detail: result.error,
      });
    } else if (result.outcome === 'new-release' && result.version !== undefined) {
      newReleases.push({
        source: result.source,
        channel: result.channel,
        board: result.board,
        version: result.version,
      });
    }
  }
  const isNew = (r: ReleaseRef) =>
    newReleases.some(
      (n) =>
        n.source === r.source && n.channel === r.channel && n.board === r.board && n.version === r.version,
    );
  for (const release of newReleases) {
    const detail = await ledger.getRelease(release);
    for (const record of detail?.artifactStates ?? []) {
      if (record.state === 'verified') verifiedArtifacts++;
      else if (record.required) problems.push(problemOf(record));
    }
  }
  // Older releases are judged only for work left behind (a run killed or given up on): their terminal
  // failures were reported by the run that reached them, and would otherwise fail every later run.
  for (const { source, channel, board } of pollTargets(config.sources)) {
    const stream = { source: source.name, channel: channel.name, board };
    for (const release of await ledger.listReleases(stream)) {
      if (release.finalizedAt !== undefined || isNew(release)) continue;
      const detail = await ledger.getRelease(release);
      for (const record of detail?.artifactStates ?? []) {
        if (record.required && record.state === 'pending') problems.push(problemOf(record));
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
