import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import {
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { PutCommand } from '@aws-sdk/lib-dynamodb';

import { startEmulators } from '../../local/emulators.ts';
import { silentLogger as silentRunnerLogger } from '../../local/runtime/log.ts';
import { makeSimKeyring } from '../../local/sim-origin/keyring.ts';

import {
  type ArtifactSpec,
  type FaultHandle,
  faults,
  type SimOrigin,
  startSimOrigin,
} from '../../local/sim-origin/sim-origin.ts';
import { type JobContext, type JobOutcome, startWorkerPool } from '../../local/worker-pool.ts';
import { makeAwsClients } from '../../shared/aws-clients.ts';
import { type CldistConfig, parseConfig } from '../../shared/config.ts';
import { describeError, PermanentError, TransientError } from '../../shared/errors.ts';
import { createDynamoLedger, type Ledger } from '../../shared/ledger/ledger.ts';
import { ledgerKey } from '../../shared/ledger/table.ts';
import { type CldistEvent, parseMirrorJob } from '../../shared/messages.ts';
import {
  type JobQueue,
  type MirrorDeps,
  type QueueJob,
  type SignatureChecker,
  silentLogger,
} from '../../shared/mirror/deps.ts';
import { type MirrorJobResult, runMirrorJob } from '../../shared/mirror/job.ts';
import { resendOpenWork, runPoll } from '../../shared/mirror/poller.ts';
import { createMirrorRuntime } from '../../shared/mirror/runtime.ts';
import { keyringChecker } from '../../shared/mirror/signatures.ts';
import { storeKey } from '../../shared/release/layout.ts';
import { compareVersions, parseVersionFile } from '../../shared/release/version-file.ts';
import { createLocalStore } from '../../shared/store/index.ts';
import { createS3Store } from '../../shared/store/s3-store.ts';
import type { ObjectStore } from '../../shared/store/types.ts';
import type { Keyring } from '../../shared/verify/keyring.ts';
import { verifyDetached } from '../../shared/verify/verify.ts';
import { type DiskFaults, findLostArtifacts, prepareDiskFaults } from './disk-faults.ts';
import { planInstanceWrites, runInstanceWrites } from './instance-writes.ts';
import {
  type ChaosPlan,
  chaosArtifacts,
  chaosBoard,
  chaosChannels,
  chaosMaxResumes,
  forkRandom,
  type PlannedArtifact,
  type PlannedRelease,
  planChaos,
  type StandIn,
  shuffled,
} from './plan.ts';
import { type OutageProxy, startOutageProxy } from './proxy.ts';
import { allRecords, checkRotation, planRotation, startRotation } from './rotation.ts';

const leaseSeconds = 8;
const maxReceives = 12;
const stuckAfterMs = 30_000;

export interface ChaosOptions {
  seed: number;
  releases: number;
  store?: 'local' | 's3';
  /** Progress lines while the run goes; silent by default. */
  log?: (line: string) => void;
  /** Give up waiting for the mirror to settle after this long. */
  settleTimeoutMs?: number;
  /** Swap parts of the mirror for broken ones, to show that the checks catch a broken mirror. */
  wrapDeps?: (deps: MirrorDeps) => MirrorDeps;
  /** Put the ledger and the local mirror on small tmpfs mounts and fill them at planned times (needs root). */
  diskFaults?: boolean;
}

export interface InvariantResult {
  name: string;
  pass: boolean;
  /** Counts behind the verdict. */
  detail: string;
  violations: string[];
}

export interface ChaosSummary {
  releases: { total: number; good: number; mirrored: number };
  artifacts: { total: number; verified: number; missing: number; failedVerification: number };
  /** Faults per kind: how many were planned, and how many requests or attempts they hit. */
  faults: Record<string, { planned: number; applied: number }>;
  jobs: {
    done: number;
    permanent: number;
    transient: number;
    redriven: number;
    swept: number;
    /** Releases whose finalize the poller's sweep retried and completed. */
    refinalized: number;
  };
  retryCodes: Record<string, number>;
  durationMs: number;
}

export interface ChaosReport {
  plan: ChaosPlan;
  store: 'local' | 's3';
  settled: boolean;
  invariants: InvariantResult[];
  summary: ChaosSummary;
  passed: boolean;
  /** Fault kinds asked for that this machine could not produce, with the reason. */
  skipped: string[];
}

interface CurrentWrite {
  channel: string;
  version: string;
}

interface Tally {
  faults: Map<string, { planned: number; handles: FaultHandle[]; applied: number }>;
  committedUnverified: string[];
  storeCurrentWrites: CurrentWrite[];
  ledgerCurrentMoves: CurrentWrite[];
  jobs: ChaosSummary['jobs'];
  retryCodes: Record<string, number>;
}

function newTally(): Tally {
  return {
    faults: new Map(),
    committedUnverified: [],
    storeCurrentWrites: [],
    ledgerCurrentMoves: [],
    jobs: { done: 0, permanent: 0, transient: 0, redriven: 0, swept: 0, refinalized: 0 },
    retryCodes: {},
  };
}

function countFault(tally: Tally, kind: string, handle?: FaultHandle, applied = 0): void {
  const entry = tally.faults.get(kind) ?? { planned: 0, handles: [], applied: 0 };
  entry.planned++;
  entry.applied += applied;
  if (handle !== undefined) entry.handles.push(handle);
  tally.faults.set(kind, entry);
}

const escapeRegex = (text: string): string => text.replace(/[.+]/g, '\\$&');

function artifactPath(release: PlannedRelease, name: string): string {
  return `/${release.channel}/${chaosBoard}/${release.version}/${name}`;
}

function exact(path: string): RegExp {
  return new RegExp(`^${escapeRegex(path)}$`);
}

/** Arms the origin for one published release: the upstream truth (tampered, missing) and the transient faults. */
function armRelease(origin: SimOrigin, release: PlannedRelease, tally: Tally): void {
  for (const artifact of release.artifacts) {
    const path = artifactPath(release, artifact.name);
    if (artifact.fate === 'missing') {
      origin.removeFile(path);
      origin.removeFile(`${path}.sig`);
      countFault(tally, 'missing', undefined, 1);
      continue;
    }
    if (artifact.fate === 'tampered') {
      const handle = origin.inject(exact(path), faults.tamper(artifact.tamperOffset ?? 0), { times: 1e9 });
      countFault(tally, 'tamper', handle);
      continue;
    }
    for (const fault of artifact.faults) {
      const at = { after: fault.after };
      switch (fault.kind) {
        case 'drop':
          countFault(tally, 'drop', origin.inject(exact(path), faults.dropAfter(fault.value), at));
          break;
        case 'truncate':
          countFault(
            tally,
            'truncate',
            origin.inject(exact(path), faults.dropAfter(fault.value), { ...at, times: chaosMaxResumes + 1 }),
          );
          break;
        case 'stall':
          countFault(tally, 'stall', origin.inject(exact(path), faults.stallAfter(fault.value), at));
          break;
        case 'objectChanged':
          countFault(tally, 'objectChanged', origin.inject(exact(path), faults.dropAfter(fault.value), at));
          origin.inject(exact(path), faults.changeEtag(), { after: fault.after + 1 });
          break;
        case 'http5xx':
          countFault(tally, 'http5xx', origin.inject(exact(path), faults.status(fault.value), at));
          break;
        case 'sig5xx':
          countFault(tally, 'sig5xx', origin.inject(exact(`${path}.sig`), faults.status(fault.value), at));
          break;
        case 'slow':
          countFault(tally, 'slow', origin.inject(exact(path), faults.delay(fault.value), at));
          break;
      }
    }
  }
  if (release.pollFailures > 0) {
    const current = `/${release.channel}/${chaosBoard}/current/version.txt`;
    countFault(
      tally,
      'poll5xx',
      origin.inject(exact(current), faults.status(503), { times: release.pollFailures }),
    );
  }
}

function versionOfBody(body: Uint8Array | string): string {
  try {
    return parseVersionFile(body).version;
  } catch {
    return '(unparsable)';
  }
}

/** The store the system writes through: every write of `current/version.txt` is recorded, in order. */
function recordingStore(store: ObjectStore, tally: Tally): ObjectStore {
  return {
    ...store,
    async put(key, body, options) {
      await store.put(key, body, options);
      const current = /^([^/]+)\/[^/]+\/current\/version\.txt$/.exec(key);
      if (current?.[1] !== undefined) {
        tally.storeCurrentWrites.push({ channel: current[1], version: versionOfBody(body) });
      }
    },
  };
}

function recordingLedger(ledger: Ledger, tally: Tally): Ledger {
  return {
    ...ledger,
    async advanceCurrent(release) {
      const moved = await ledger.advanceCurrent(release);
      if (moved) tally.ledgerCurrentMoves.push({ channel: release.channel, version: release.version });
      return moved;
    },
  };
}

/**
 * The poller's queue: some jobs go out twice, and every batch is shuffled, so workers see duplicate and
 * reordered deliveries. Drawn from the seed, per send.
 */
function chaosJobQueue(inner: JobQueue, plan: ChaosPlan, tally: Tally): JobQueue {
  const duplicates = new Set(
    plan.releases.flatMap((release) =>
      release.artifacts
        .filter((a) => a.duplicate)
        .map((a) => `${release.channel}/${release.version}/${a.name}`),
    ),
  );
  let sends = 0;
  return {
    async sendJobs(jobs) {
      const random = forkRandom(plan.seed, `shuffle:${sends++}`);
      const batch: QueueJob[] = [];
      for (const job of jobs) {
        batch.push(job);
        const id = `${job.channel}/${job.version}/${'artifact' in job ? job.artifact : job.name}`;
        if (duplicates.delete(id)) {
          batch.push(job);
          countFault(tally, 'duplicate', undefined, 1);
        }
      }
      if (jobs.length > 1) countFault(tally, 'reordered', undefined, 1);
      await inner.sendJobs(shuffled(random, batch));
    },
  };
}

function errorCode(error: unknown): string {
  if (error instanceof TransientError || error instanceof PermanentError) return error.code;
  if (!(error instanceof Error)) return 'error';
  if (error.message.startsWith('worker killed')) return 'worker killed';
  return `raw ${error.message.replace(/ 127\.0\.0\.1:[0-9]+/g, '').slice(0, 40)}`;
}

async function queueDepth(sqs: SQSClient, url: string): Promise<number> {
  const out = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  const a = out.Attributes ?? {};
  return Number(a.ApproximateNumberOfMessages ?? 0) + Number(a.ApproximateNumberOfMessagesNotVisible ?? 0);
}

/** What an operator does with a dead-lettered job once the outage is over: send it back. */
async function redrive(sqs: SQSClient, from: string, to: string): Promise<number> {
  let moved = 0;
  for (;;) {
    const got = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: from, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
    );
    const messages = got.Messages ?? [];
    if (messages.length === 0) return moved;
    for (const message of messages) {
      await sqs.send(new SendMessageCommand({ QueueUrl: to, MessageBody: message.Body ?? '' }));
      await sqs.send(
        new DeleteMessageCommand({ QueueUrl: from, ReceiptHandle: message.ReceiptHandle ?? '' }),
      );
      moved++;
    }
  }
}

/** The chaos config uses the old top-level lists: one source, `flatcar`, at the mirror's root. */
const chaosSource = 'flatcar';

function releaseId(release: { channel: string; version: string; board?: string; source?: string }): string {
  return `${release.channel}/${release.version}`;
}

function isGood(release: PlannedRelease): boolean {
  return release.artifacts.every((a) => !a.required || a.fate === 'good');
}

interface Settlement {
  settled: boolean;
  open: string[];
}

async function settlement(ledger: Ledger, plan: ChaosPlan, depth: number): Promise<Settlement> {
  const open: string[] = [];
  for (const planned of plan.releases) {
    const ref = {
      source: chaosSource,
      channel: planned.channel,
      board: chaosBoard,
      version: planned.version,
    };
    const detail = await ledger.getRelease(ref);
    if (detail === undefined) {
      open.push(`${releaseId(ref)} unclaimed`);
      continue;
    }
    for (const artifact of detail.artifactStates) {
      if (artifact.state === 'pending' || artifact.state === 'awaiting_trust') {
        open.push(`${releaseId(ref)}/${artifact.artifact} ${artifact.state}`);
      }
    }
    const required = detail.artifactStates.filter((a) => a.required);
    if (required.every((a) => a.state === 'verified') && detail.finalizedAt === undefined) {
      open.push(`${releaseId(ref)} not finalized`);
    }
  }
  if (depth > 0) open.push(`${depth} jobs queued`);
  return { settled: open.length === 0, open };
}

function monotone(writes: CurrentWrite[], what: string): string[] {
  const highest = new Map<string, string>();
  const violations: string[] = [];
  writes.forEach((write, index) => {
    const top = highest.get(write.channel);
    if (top !== undefined && compareVersions(write.version, top) < 0) {
      violations.push(`${what} #${index + 1}: ${write.channel} moved back from ${top} to ${write.version}`);
    }
    if (top === undefined || compareVersions(write.version, top) > 0)
      highest.set(write.channel, write.version);
  });
  return violations;
}

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

const sha512 = (bytes: Uint8Array): string => createHash('sha512').update(bytes).digest('hex');

interface CheckContext {
  plan: ChaosPlan;
  origin: SimOrigin;
  published: Map<string, Record<string, string>>;
  store: ObjectStore;
  ledger: Ledger;
  keyring: Keyring;
  events: CldistEvent[];
  tally: Tally;
}

async function originBytes(origin: SimOrigin, path: string): Promise<Uint8Array | undefined> {
  const response = await fetch(`${origin.url}${path}`);
  if (response.status !== 200) return undefined;
  return new Uint8Array(await response.arrayBuffer());
}

function eventCount(events: CldistEvent[], name: CldistEvent['event'], id: string): number {
  return events.filter((e) => e.event === name && `${e.channel}/${e.version}/${e.artifact ?? ''}` === id)
    .length;
}

/** The ledger's side of a violation, so the report says where the event went missing. */
async function ledgerNote(
  ledger: Ledger,
  release: PlannedRelease,
  artifact: PlannedArtifact,
): Promise<string> {
  const record = await ledger.getArtifact({
    source: chaosSource,
    channel: release.channel,
    board: chaosBoard,
    version: release.version,
    artifact: artifact.name,
  });
  if (record === undefined) return 'not in the ledger';
  return `ledger: ${record.state} after ${record.attempts} attempts${record.lastError === undefined ? '' : `, last error ${record.lastError.slice(0, 120)}`}`;
}

async function checkInvariants(context: CheckContext): Promise<InvariantResult[]> {
  const { plan, origin, published, store, ledger, keyring, events, tally } = context;
  const planned = new Map<string, { release: PlannedRelease; artifact: PlannedArtifact }>();
  for (const release of plan.releases) {
    for (const artifact of release.artifacts) {
      planned.set(`${release.channel}/${release.version}/${artifact.name}`, { release, artifact });
    }
  }
  const unverified: string[] = tally.committedUnverified.map(
    (key) => `${key} committed before its signature verified`,
  );
  const hashes: string[] = [];
  let visibleArtifacts = 0;
  let visibleSignatures = 0;
  const keys = await store.list('');
  for (const key of keys) {
    const [channel, board, version, file, ...rest] = key.split('/');
    if (
      channel === undefined ||
      board !== chaosBoard ||
      version === undefined ||
      file === undefined ||
      rest.length > 0
    ) {
      unverified.push(`${key}: an object outside the release layout`);
      continue;
    }
    if (version === 'current' || file === 'release.json') continue;
    const id = `${channel}/${version}/${file.replace(/\.sig$/, '')}`;
    const entry = planned.get(id);
    if (entry === undefined) {
      unverified.push(`${key}: no such artifact was published`);
      continue;
    }
    const body = await store.get(key);
    if (body === undefined) continue;
    if (file.endsWith('.sig')) {
      visibleSignatures++;
      const upstream = await originBytes(origin, `/${key}`);
      if (upstream === undefined || Buffer.compare(Buffer.from(upstream), Buffer.from(body)) !== 0) {
        unverified.push(`${key}: differs from the origin's signature`);
      }
      continue;
    }
    visibleArtifacts++;
    const record = await ledger.getArtifact({ source: chaosSource, channel, board, version, artifact: file });
    if (record?.state !== 'verified') {
      unverified.push(`${key}: visible while the ledger says ${record?.state ?? 'nothing'}`);
    }
    const signature = await store.get(`${key}.sig`);
    if (signature === undefined) {
      unverified.push(`${key}: visible without its signature`);
    } else {
      try {
        await verifyDetached(once(body), signature, keyring, {
          now: new Date(),
          maxClockSkewSeconds: 300,
          expectedBytes: body.byteLength,
        });
      } catch (error) {
        unverified.push(`${key}: does not verify against the origin key: ${describeError(error)}`);
      }
    }
    const expected = published.get(releaseId({ source: chaosSource, channel, board, version }))?.[file];
    const actual = sha512(body);
    if (actual !== expected)
      hashes.push(
        `${key}: sha512 ${actual.slice(0, 16)}… is not the origin's ${String(expected).slice(0, 16)}…`,
      );
    if (record?.sha512 !== undefined && record.sha512 !== expected) {
      hashes.push(`${key}: the ledger's sha512 is not the origin's`);
    }
  }
  for (const key of keys.filter((k) => k.endsWith('/release.json'))) {
    const body = await store.get(key);
    if (body === undefined) continue;
    const manifest = JSON.parse(new TextDecoder().decode(body)) as {
      channel: string;
      version: string;
      artifacts: Record<string, { sha512: string }>;
    };
    const upstream = published.get(`${manifest.channel}/${manifest.version}`) ?? {};
    for (const [name, facts] of Object.entries(manifest.artifacts)) {
      if (facts.sha512 !== upstream[name])
        hashes.push(`${key}: ${name} listed with a sha512 that is not the origin's`);
    }
  }

  const mirroredViolations: string[] = [];
  let good = 0;
  let notGood = 0;
  for (const release of plan.releases) {
    const count = events.filter(
      (e) => e.event === 'release.mirrored' && e.channel === release.channel && e.version === release.version,
    ).length;
    const expected = isGood(release) ? 1 : 0;
    if (isGood(release)) good++;
    else notGood++;
    if (count !== expected) {
      mirroredViolations.push(
        `${releaseId({ ...release, board: chaosBoard })}: ${count} release.mirrored, expected ${expected}`,
      );
    }
  }

  const tamperViolations: string[] = [];
  const missingViolations: string[] = [];
  let tampered = 0;
  let missing = 0;
  for (const [id, { release, artifact }] of planned) {
    const key = storeKey('', release.channel, chaosBoard, release.version, artifact.name);
    const failed = eventCount(events, 'artifact.verification_failed', id);
    const missed = eventCount(events, 'artifact.missing', id);
    if (artifact.fate === 'tampered') {
      tampered++;
      if (failed !== 1) {
        tamperViolations.push(
          `${id}: ${failed} artifact.verification_failed, expected 1 (${await ledgerNote(ledger, release, artifact)})`,
        );
      }
      if ((await store.head(key)) !== undefined) tamperViolations.push(`${id}: visible in the mirror`);
      if ((await store.head(`${key}.sig`)) !== undefined)
        tamperViolations.push(`${id}.sig: visible in the mirror`);
    } else if (failed > 0) {
      tamperViolations.push(`${id}: ${failed} artifact.verification_failed for an untampered artifact`);
    }
    if (artifact.fate === 'missing') {
      missing++;
      if (missed !== 1) {
        missingViolations.push(
          `${id}: ${missed} artifact.missing, expected 1 (${await ledgerNote(ledger, release, artifact)})`,
        );
      }
    } else if (missed > 0) {
      missingViolations.push(`${id}: ${missed} artifact.missing for an artifact the origin has`);
    }
  }

  const currentViolations = [
    ...monotone(tally.storeCurrentWrites, 'store write'),
    ...monotone(tally.ledgerCurrentMoves, 'ledger move'),
  ];
  for (const channel of chaosChannels) {
    const mirrored = events
      .filter((e) => e.event === 'release.mirrored' && e.channel === channel && e.version !== undefined)
      .map((e) => e.version ?? '');
    const newest = mirrored.sort(compareVersions).at(-1);
    const file = await store.get(`${channel}/${chaosBoard}/current/version.txt`);
    const visible = file === undefined ? undefined : versionOfBody(file);
    const ledgerCurrent = (await ledger.getCurrent({ source: chaosSource, channel, board: chaosBoard }))
      ?.version;
    if (visible !== newest || ledgerCurrent !== newest) {
      currentViolations.push(
        `${channel}: current is ${visible ?? 'absent'} in the store and ${ledgerCurrent ?? 'absent'} in the ledger; newest mirrored is ${newest ?? 'none'}`,
      );
    }
  }

  const result = (name: string, detail: string, violations: string[]): InvariantResult => ({
    name,
    pass: violations.length === 0,
    detail,
    violations,
  });
  return [
    result(
      'no object visible unless verified',
      `${visibleArtifacts} artifacts and ${visibleSignatures} signatures visible; ${tally.committedUnverified.length} commits before verification`,
      unverified,
    ),
    result(
      "every visible object's sha512 equals the origin's",
      `${visibleArtifacts} artifacts hashed`,
      hashes,
    ),
    result(
      'one release.mirrored per good release',
      `${good} good releases, ${notGood} with a bad or missing required artifact`,
      mirroredViolations,
    ),
    result(
      'tampered: one artifact.verification_failed, absent',
      `${tampered} tampered artifacts`,
      tamperViolations,
    ),
    result(
      'current never moved backwards',
      `${tally.storeCurrentWrites.length} store writes, ${tally.ledgerCurrentMoves.length} ledger moves`,
      currentViolations,
    ),
    result('missing: one artifact.missing each', `${missing} missing artifacts`, missingViolations),
  ];
}

function chaosConfig(originBaseUrl: string, seed: number, storeKind: 'local' | 's3'): CldistConfig {
  return parseConfig({
    store: storeKind === 's3' ? { kind: 's3', bucket: `chaos-mirror-${seed}`, prefix: '' } : undefined,
    channels: chaosChannels.map((name) => ({ name, baseUrl: originBaseUrl })),
    boards: [chaosBoard],
    artifacts: chaosArtifacts.map((a) => ({ ...a })),
    limits: { requestTimeoutSeconds: 2, maxResumes: chaosMaxResumes },
    worker: { partSizeMiB: 5, partsInFlight: 2 },
    schedule: { everyMinutes: 1, stallAfterMinutes: 1 },
    table: `chaos-ledger-${seed}`,
    queue: {
      jobs: `chaos-jobs-${seed}`,
      deadLetter: `chaos-jobs-dlq-${seed}`,
      retry: { maxReceives, firstDelaySeconds: 1, maxDelaySeconds: 4 },
    },
    topic: `chaos-events-${seed}`,
  });
}

/**
 * One seeded chaos run of the release mirror on the single-machine stand-ins: the sim origin publishes
 * the planned releases across three channels, the real poller claims them, a worker pool on a fauxqs queue
 * (with a dead-letter queue) mirrors them into a local folder or S3 on fauxqs with a dynalite ledger, and
 * the planned faults fire. At the end every invariant of the mirror is checked against what the origin
 * really holds.
 */
export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const started = Date.now();
  const log = options.log ?? (() => {});
  const storeKind = options.store ?? 'local';
  const plan = planChaos(options.seed, options.releases);
  const rotationPlan = planRotation(options.seed, options.releases);
  const tally = newTally();
  const folder = await mkdtemp(join(tmpdir(), 'cldist-chaos-'));
  const cleanups: (() => Promise<void>)[] = [async () => rm(folder, { recursive: true, force: true })];
  const cleanup = async (): Promise<void> => {
    for (const step of cleanups.reverse()) await step().catch(() => undefined);
  };
  const skipped: string[] = [];
  try {
    let disk: DiskFaults | undefined;
    if (options.diskFaults === true) {
      const prepared = await prepareDiskFaults(folder, plan, storeKind);
      if ('unavailable' in prepared) skipped.push(`disk faults: ${prepared.unavailable}`);
      else disk = prepared;
      if (disk !== undefined) cleanups.push(() => disk?.unmount() ?? Promise.resolve());
    }
    const rotation = rotationPlan === undefined ? undefined : await startRotation(rotationPlan);
    const origin = await startSimOrigin(
      rotation === undefined ? {} : { privateKeyArmored: rotation.keys.privateKeyArmored },
    );
    cleanups.push(() => origin.close());
    const config = chaosConfig(origin.baseUrl, options.seed, storeKind);
    const emulators = await startEmulators({
      ledgerPath: disk?.ledgerPath ?? join(folder, 'ledger'),
      config,
      maxReceives: config.queue.retry.maxReceives,
      visibilityTimeoutSeconds: 10,
    });
    cleanups.push(() => emulators.close());
    const proxies: Record<StandIn, OutageProxy> = {
      fauxqs: await startOutageProxy(emulators.endpoints.fauxqs),
      dynalite: await startOutageProxy(emulators.endpoints.dynamodb),
    };
    cleanups.push(async () => {
      await proxies.fauxqs.close();
      await proxies.dynalite.close();
    });
    const system = makeAwsClients({
      s3: proxies.fauxqs.url,
      sqs: proxies.fauxqs.url,
      sns: proxies.fauxqs.url,
      dynamodb: proxies.dynalite.url,
    });
    const observer = makeAwsClients({
      s3: emulators.endpoints.fauxqs,
      sqs: emulators.endpoints.fauxqs,
      dynamodb: emulators.endpoints.dynamodb,
    });
    cleanups.push(async () => {
      for (const clients of [system, observer]) {
        clients.s3.destroy();
        clients.sqs.destroy();
        clients.sns.destroy();
        clients.dynamodb.destroy();
      }
    });
    const { tableName, jobsQueueUrl, deadLetterQueueUrl } = emulators.resources;
    // Concurrent admin writes to the same instance ids, beside the mirror run, on the stand-ins directly.
    const instanceWrites = runInstanceWrites(observer.doc, tableName, planInstanceWrites(options.seed));
    instanceWrites.catch(() => undefined);

    const localMirrorRoot = disk?.mirrorPath ?? join(folder, 'mirror');
    let observedStore: ObjectStore;
    if (config.store.kind === 's3') {
      const bucket = config.store.bucket;
      await observer.s3.send(new CreateBucketCommand({ Bucket: bucket }));
      observedStore = createS3Store(observer.s3, { bucket });
    } else {
      observedStore = createLocalStore(localMirrorRoot);
    }
    const keyring = rotation === undefined ? await makeSimKeyring(origin) : rotation.trust.peek().keyring;
    const events: CldistEvent[] = [];
    const observedLedger = createDynamoLedger(observer.doc, tableName);
    // The mirror's own assembly, over the relays; chaos only wraps its parts with recorders and faults.
    const runtime = await createMirrorRuntime({
      config,
      resources: { ...emulators.resources, localMirrorRoot },
      clients: system,
      logger: silentLogger,
      ...(rotation === undefined ? {} : { trust: rotation.trust }),
      decorate: (built) => {
        const recorded: MirrorDeps = {
          ...built,
          ledger: recordingLedger(built.ledger, tally),
          store: recordingStore(built.store, tally),
          notifier: {
            async publish(event) {
              events.push(structuredClone(event));
            },
          },
          jobs: chaosJobQueue(built.jobs, plan, tally),
          ...(rotation === undefined ? { signatures: keyringChecker(keyring) } : {}),
          leaseSeconds,
        };
        return options.wrapDeps?.(recorded) ?? recorded;
      },
    });
    const { deps } = runtime;

    const kills = new Map<string, number[]>();
    for (const release of plan.releases) {
      for (const artifact of release.artifacts) {
        if (artifact.kills.length > 0) {
          kills.set(storeKey('', release.channel, chaosBoard, release.version, artifact.name), [
            ...artifact.kills,
          ]);
          for (const _ of artifact.kills) countFault(tally, 'killed');
        }
      }
    }

    /**
     * One delivery. A planned kill makes the upload die after some bytes the way a killed process does:
     * no abort of the staged upload and no ledger write; the message comes back after its visibility.
     */
    const handleJob = async (body: string, context: JobContext): Promise<MirrorJobResult> => {
      const job = parseMirrorJob(body);
      const key = storeKey('', job.channel, job.board, job.version, job.artifact);
      let verified = false;
      let killed = false;
      const signatures: SignatureChecker = {
        async verify(data, signature, verifyOptions) {
          const result = await deps.signatures.verify(data, signature, verifyOptions);
          verified = true;
          return result;
        },
        status: (now, days) => deps.signatures.status(now, days),
        refreshTrust: () => deps.signatures.refreshTrust(),
        trustLocation: deps.signatures.trustLocation,
      };
      const store: ObjectStore = {
        ...deps.store,
        async beginUpload(uploadKey, uploadOptions) {
          const upload = await deps.store.beginUpload(uploadKey, uploadOptions);
          const killAt = uploadKey === key ? kills.get(key)?.shift() : undefined;
          return {
            get bytesWritten() {
              return upload.bytesWritten;
            },
            async write(chunk) {
              if (killAt !== undefined && upload.bytesWritten + chunk.byteLength > killAt) {
                killed = true;
                const entry = tally.faults.get('killed');
                if (entry !== undefined) entry.applied++;
                throw new Error(`worker killed after ${upload.bytesWritten} bytes of ${uploadKey}`);
              }
              await upload.write(chunk);
            },
            async commit() {
              if (!verified) tally.committedUnverified.push(uploadKey);
              await upload.commit();
            },
            abort: () => (killed ? Promise.resolve() : upload.abort()),
          };
        },
      };
      const ledger: Ledger = {
        ...deps.ledger,
        endAttempt: (ref, error) => (killed ? Promise.resolve() : deps.ledger.endAttempt(ref, error)),
      };
      return runMirrorJob(
        body,
        { deps: { ...deps, signatures, store, ledger }, config },
        { signal: context.signal, receiveCount: context.receiveCount },
      );
    };

    const pool = startWorkerPool({
      sqs: system.sqs,
      queueUrl: jobsQueueUrl,
      concurrency: plan.workers,
      handleJob,
      logger: silentRunnerLogger,
      waitTimeSeconds: 1,
      visibilityTimeoutSeconds: 10,
      retry: config.queue.retry,
      onOutcome(outcome: JobOutcome) {
        if (outcome.kind === 'done') tally.jobs.done++;
        if (outcome.kind === 'permanent') tally.jobs.permanent++;
        if (outcome.kind === 'transient') {
          tally.jobs.transient++;
          const code = errorCode(outcome.error);
          tally.retryCodes[code] = (tally.retryCodes[code] ?? 0) + 1;
        }
      },
    });
    let poolStopped = false;
    cleanups.push(async () => {
      if (!poolStopped) await pool.stop();
    });

    log(
      `seed ${plan.seed}: ${plan.releases.length} releases, ${plan.workers} workers, schedule ${plan.digest}`,
    );
    const published = new Map<string, Record<string, string>>();
    const chaosStart = Date.now();
    const outageRuns = (['fauxqs', 'dynalite'] as const).map(async (target) => {
      for (const outage of plan.outages.filter((o) => o.target === target)) {
        const wait = chaosStart + outage.atMs - Date.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        log(`outage: ${target} for ${outage.ms} ms`);
        await proxies[target].outage(outage.ms);
        log(`outage over: ${target}`);
      }
    });
    const diskRun =
      disk?.run(chaosStart, log, {
        failures: () => emulators.ledger.crashes,
        touch: () =>
          observer.doc
            .send(
              new PutCommand({
                TableName: tableName,
                Item: { ...ledgerKey('chaos#probe', 'probe'), pad: 'x'.repeat(2048) },
              }),
            )
            .then(
              () => undefined,
              () => undefined,
            ),
      }) ?? Promise.resolve();
    const previous = new Map<string, string>();
    for (const release of plan.releases) {
      const out = await origin.publishRelease({
        channel: release.channel,
        board: chaosBoard,
        version: release.version,
        ...(rotation === undefined ? {} : { signingSubkey: rotation.signerFor(release.index) }),
        artifacts: release.artifacts.flatMap((a): ArtifactSpec[] => {
          if (a.content !== undefined) return [{ name: a.name, content: a.content }];
          return a.size === undefined ? [] : [{ name: a.name, size: a.size }];
        }),
      });
      published.set(releaseId({ ...release, board: chaosBoard }), out.sha512);
      armRelease(origin, release, tally);
      const ref = {
        source: chaosSource,
        channel: release.channel,
        board: chaosBoard,
        version: release.version,
      };
      const deadline = Date.now() + 60_000;
      for (;;) {
        const polled = await runPoll(deps, config);
        const mine = polled.results.find((r) => r.channel === release.channel);
        if (mine?.outcome === 'error') log(`poll of ${release.channel} failed: ${mine.error ?? ''}`);
        if ((await observedLedger.getRelease(ref).catch(() => undefined)) !== undefined) break;
        if (Date.now() > deadline) throw new Error(`the poller did not claim ${releaseId(ref)} within 60 s`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const before = previous.get(release.channel);
      if (release.currentBackwards && before !== undefined) {
        origin.setCurrent(release.channel, chaosBoard, before);
        countFault(tally, 'currentBackwards', undefined, 1);
        await runPoll(deps, config);
      }
      previous.set(release.channel, release.version);
      log(`published ${releaseId(ref)} (${release.index + 1}/${plan.releases.length})`);
    }

    const settleDeadline = Date.now() + (options.settleTimeoutMs ?? 120_000 + plan.releases.length * 10_000);
    let state: Settlement = { settled: false, open: [] };
    let idleSince = Date.now();
    let changedAt = Date.now();
    let lastOpen = '';
    while (Date.now() < settleDeadline) {
      try {
        const depth = await queueDepth(observer.sqs, jobsQueueUrl);
        const dead = await queueDepth(observer.sqs, deadLetterQueueUrl);
        state = await settlement(observedLedger, plan, depth + dead);
        if (
          rotation !== undefined &&
          !rotation.uploaded &&
          depth === 0 &&
          state.open.some((o) => o.endsWith('awaiting_trust'))
        ) {
          rotation.upload();
          log(`rotation: the operator uploads subkey ${rotation.keys.newSubkey.keyId}, late`);
        }
        if (state.settled) break;
        const openKey = state.open.join(',');
        if (openKey !== lastOpen) {
          lastOpen = openKey;
          idleSince = Date.now();
          changedAt = Date.now();
        }
        if (depth === 0 && Date.now() - changedAt > stuckAfterMs) {
          log(`no progress for ${stuckAfterMs / 1000} s with an empty queue; giving up`);
          break;
        }
        if (depth === 0 && dead > 0) {
          tally.jobs.redriven += await redrive(observer.sqs, deadLetterQueueUrl, jobsQueueUrl);
          log(`redrove ${tally.jobs.redriven} dead-lettered jobs so far`);
        } else if (depth === 0 && Date.now() - idleSince > 3000) {
          // Every open artifact counts as stalled, even one touched a moment ago: the queue is empty.
          const report = await resendOpenWork(deps, config, new Date(Date.now() + 60_000));
          // A scheduled poll too: it sends again what waits for a trust the operator changed meanwhile.
          await runPoll(deps, config);
          tally.jobs.swept += report.resent;
          tally.jobs.refinalized += report.refinalized;
          idleSince = Date.now();
          log(
            `stalled sweep re-sent ${report.resent} jobs and finalized ${report.refinalized} release(s) (${state.open.slice(0, 3).join('; ')})`,
          );
        }
      } catch (error) {
        log(`settle check failed: ${describeError(error)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    await Promise.all([...outageRuns, diskRun]);
    await emulators.ledger.ready();
    await pool.stop();
    poolStopped = true;
    origin.clearFaults();

    const invariants = await checkInvariants({
      plan,
      origin,
      published,
      store: observedStore,
      ledger: observedLedger,
      keyring: rotation?.trust.peek().keyring ?? keyring,
      events,
      tally,
    });
    if (rotation !== undefined) {
      const refs = plan.releases.map((r) => ({
        source: chaosSource,
        channel: r.channel,
        board: chaosBoard,
        version: r.version,
      }));
      invariants.push(checkRotation(rotation, await allRecords(observedLedger, refs), events));
    }
    const writes = await instanceWrites;
    invariants.push(writes.invariant);
    const lost = await findLostArtifacts(plan, observedLedger, observedStore);
    invariants.push({
      name: 'nothing verified is lost',
      pass: lost.length === 0,
      detail: 'every artifact the ledger calls verified is in the mirror at its size',
      violations: lost,
    });
    if (!state.settled) {
      invariants.unshift({
        name: 'the mirror settled',
        pass: false,
        detail: 'still open when the run stopped waiting',
        violations: state.open,
      });
    }
    const artifactStates = (
      await Promise.all(
        plan.releases.map((r) =>
          observedLedger.getRelease({
            source: chaosSource,
            channel: r.channel,
            board: chaosBoard,
            version: r.version,
          }),
        ),
      )
    ).flatMap((detail) => detail?.artifactStates ?? []);
    const faultSummary: ChaosSummary['faults'] = {};
    for (const [kind, entry] of tally.faults) {
      faultSummary[kind] = {
        planned: entry.planned,
        applied: entry.applied + entry.handles.reduce((sum, handle) => sum + handle.applied, 0),
      };
    }
    faultSummary.instanceWrites = writes.fault;
    if (disk !== undefined) {
      for (const kind of ['ledgerIo', 'diskFull'] as const) {
        faultSummary[kind] = {
          planned: disk.planned.filter((f) => f.kind === kind).length,
          // A full ledger disk hits when LevelDB fails a write (its thread ends and restarts).
          applied: kind === 'ledgerIo' ? emulators.ledger.crashes : disk.applied[kind],
        };
      }
    }
    faultSummary.outage = {
      planned: plan.outages.length,
      applied: proxies.fauxqs.outages + proxies.dynalite.outages,
    };
    const summary: ChaosSummary = {
      releases: {
        total: plan.releases.length,
        good: plan.releases.filter(isGood).length,
        mirrored: events.filter((e) => e.event === 'release.mirrored').length,
      },
      artifacts: {
        total: artifactStates.length,
        verified: artifactStates.filter((a) => a.state === 'verified').length,
        missing: artifactStates.filter((a) => a.state === 'missing').length,
        failedVerification: artifactStates.filter((a) => a.state === 'failed_verification').length,
      },
      faults: faultSummary,
      jobs: tally.jobs,
      retryCodes: tally.retryCodes,
      durationMs: Date.now() - started,
    };
    return {
      plan,
      store: storeKind,
      settled: state.settled,
      invariants,
      summary,
      passed: invariants.every((i) => i.pass),
      skipped,
    };
  } finally {
    await cleanup();
  }
}

/** The report as printed by `npm run chaos`: one PASS/FAIL line per invariant, then the summary. */
export function formatChaosReport(report: ChaosReport): string {
  const { plan, summary } = report;
  const lines = [
    `chaos seed=${plan.seed} releases=${plan.releases.length} channels=${chaosChannels.length} workers=${plan.workers} store=${report.store} schedule=${plan.digest}`,
  ];
  for (const invariant of report.invariants) {
    lines.push(`${invariant.pass ? 'PASS' : 'FAIL'}  ${invariant.name} (${invariant.detail})`);
    for (const violation of invariant.violations.slice(0, 10)) lines.push(`        - ${violation}`);
    if (invariant.violations.length > 10) lines.push(`        - … ${invariant.violations.length - 10} more`);
  }
  const a = summary.artifacts;
  lines.push(
    `releases: ${summary.releases.total} (${summary.releases.good} good, ${summary.releases.mirrored} release.mirrored)`,
    `artifacts: ${a.total} (${a.verified} verified, ${a.missing} missing, ${a.failedVerification} failed verification)`,
    `faults (planned/hit): ${Object.entries(summary.faults)
      .map(([kind, f]) => `${kind} ${f.planned}/${f.applied}`)
      .join(', ')}`,
    `jobs: ${summary.jobs.done} done, ${summary.jobs.permanent} refused, ${summary.jobs.transient} retried, ${summary.jobs.redriven} redriven from the DLQ, ${summary.jobs.swept} re-sent by the stalled sweep, ${summary.jobs.refinalized} release(s) finalized by it`,
    `retries by cause: ${
      Object.entries(summary.retryCodes)
        .sort((x, y) => y[1] - x[1])
        .map(([code, n]) => `${code} ${n}`)
        .join(', ') || 'none'
    }`,
    ...report.skipped.map((reason) => `skipped: ${reason}`),
    `duration: ${(summary.durationMs / 1000).toFixed(1)} s`,
    report.passed ? 'RESULT: PASS' : 'RESULT: FAIL',
  );
  return lines.join('\n');
}
