import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createWorkerHandler } from '../../functions/mirror-worker/handler.ts';
import { faults } from '../../local/sim-origin/sim-origin.ts';
import { simUpdateOrigin, type UpdatePayloadSpec } from '../../local/sim-origin/update-payloads.ts';
import { type CldistConfig, parseConfig } from '../../shared/config.ts';
import { TransientError } from '../../shared/errors.ts';
import type { CldistEvent } from '../../shared/messages.ts';
import { type MirrorDeps, silentLogger } from '../../shared/mirror/deps.ts';
import { runPoll } from '../../shared/mirror/poller.ts';
import type { UpdatePayloadJob } from '../../shared/mirror/update-payload-job.ts';
import { loadUpdatePayloadKeys } from '../../shared/update/crau-verify.ts';
import { MAIN_UPDATE_PAYLOAD, updatePayloadKey } from '../../shared/update/payload-record.ts';
import { buildCrauPayload, type TestKeyPair, testPayloadKey } from '../support/crau-generator.ts';
import { drain, type MirrorRig, receiveJobs, startRig } from './mirror-harness.ts';

const board = 'amd64-usr';
const version = '4081.2.0';
const oem = 'oem-qemu.gz';

let signer: TestKeyPair;
let stranger: TestKeyPair;
let folder: string;
let keyPath: string;

beforeAll(async () => {
  signer = testPayloadKey();
  stranger = testPayloadKey();
  folder = await mkdtemp(join(tmpdir(), 'cldist-update-keys-'));
  keyPath = join(folder, 'update-payload-key.pub.pem');
  await writeFile(keyPath, signer.publicPem);
});
afterAll(async () => {
  await rm(folder, { recursive: true, force: true });
});

const hash = (algorithm: string, bytes: Uint8Array) => createHash(algorithm).update(bytes).digest();
const refusals = (events: CldistEvent[]) => events.filter((e) => e.event === 'artifact.verification_failed');

interface UpdateRig {
  rig: MirrorRig;
  config: CldistConfig;
  deps: MirrorDeps;
  worker: ReturnType<typeof createWorkerHandler>;
  /** Publishes a release (version.txt only) and its payloads, polls, and runs the worker until idle. */
  mirror(payloads: UpdatePayloadSpec[]): Promise<{ jobsSent: number | undefined; failures: number }>;
}

async function startUpdateRig(payloads: string[] = [oem], channels = ['stable']): Promise<UpdateRig> {
  const rig = await startRig({
    channels,
    artifacts: [{ name: 'version.txt' }],
    visibilityTimeout: 1,
  });
  const config = parseConfig({
    ...rig.config,
    update: { origin: simUpdateOrigin(rig.origin.url), payloads, payloadKeys: [keyPath] },
  });
  const deps: MirrorDeps = {
    ...rig.deps,
    updateKeys: loadUpdatePayloadKeys(config.update?.payloadKeys ?? []),
  };
  const worker = createWorkerHandler(async () => ({ deps, config }), silentLogger);
  return {
    rig,
    config,
    deps,
    worker,
    async mirror(specs) {
      await rig.origin.publishRelease({ channel: 'stable', board, version, artifacts: [] });
      await rig.origin.publishUpdatePayloads({ board, version, payloads: specs });
      const poll = await runPoll(deps, config);
      const report = await drain(worker, rig.jobsQueue);
      return { jobsSent: poll.results[0]?.jobsSent, failures: report.failures };
    },
  };
}

const signed = (data = 200_000, signers = () => [signer.privateKey]) =>
  buildCrauPayload({ signers: signers(), data }).bytes;

describe('update payloads mirrored from the update origin, verified before anything is visible', () => {
  let setup: UpdateRig | undefined;
  afterEach(async () => {
    await setup?.rig.close();
    setup = undefined;
  });

  it('mirrors the main and OEM payloads, recording size, SHA-1 and SHA-256 of their own bytes', async () => {
    setup = await startUpdateRig([oem, 'oem-azure.gz']);
    const main = signed(300_001);
    const qemu = signed(70_000);
    const { jobsSent, failures } = await setup.mirror([
      { name: MAIN_UPDATE_PAYLOAD, content: main },
      { name: oem, content: qemu },
    ]);
    expect(jobsSent).toBe(1 + 3);
    expect(failures).toBe(0);
    const { rig } = setup;
    const records = await rig.ledger.payloadsFor(board, version);
    expect(records.map((r) => r.name)).toEqual([MAIN_UPDATE_PAYLOAD, oem]);
    for (const [record, bytes] of [
      [records[0], main],
      [records[1], qemu],
    ] as const) {
      expect(record).toMatchObject({
        board,
        version,
        key: updatePayloadKey(board, version, record?.name ?? ''),
        size: bytes.byteLength,
        sha1Base64: hash('sha1', bytes).toString('base64'),
        sha256Hex: hash('sha256', bytes).toString('hex'),
      });
      const stored = await rig.store.get(record?.key ?? '');
      expect(stored && Buffer.from(stored).equals(Buffer.from(bytes))).toBe(true);
    }
    expect(await rig.ledger.getPayload({ board, version, name: 'oem-azure.gz' })).toMatchObject({
      state: 'missing',
    });
    expect(refusals(await rig.events())).toEqual([]);
  });

  it('plans a version two channels name once, and a poll that failed to plan leaves it to the next poll', async () => {
    setup = await startUpdateRig([], ['stable', 'beta']);
    const { rig, config } = setup;
    const payloadJobs = async () =>
      (await receiveJobs(rig.jobsQueue, 10, 0))
        .map((record) => JSON.parse(record.body) as { kind?: string; version?: string })
        .filter((job) => job.kind === 'update-payload')
        .map((job) => job.version);
    for (const channel of ['stable', 'beta']) {
      await rig.origin.publishRelease({ channel, board, version, artifacts: [] });
    }
    const main = [{ name: MAIN_UPDATE_PAYLOAD, content: signed(1000) }];
    await rig.origin.publishUpdatePayloads({ board, version, payloads: main });
    const both = await runPoll(setup.deps, config);
    expect(both.results.map((r) => r.outcome)).toEqual(['new-release', 'new-release']);
    expect(await payloadJobs()).toEqual([version]);

    const next = '4081.2.1';
    await rig.origin.publishRelease({ channel: 'stable', board, version: next, artifacts: [] });
    await rig.origin.publishUpdatePayloads({ board, version: next, payloads: main });
    let failures = 1;
    const flaky: MirrorDeps = {
      ...setup.deps,
      ledger: {
        ...setup.deps.ledger,
        planPayloads: (...args) =>
          failures-- > 0
            ? Promise.reject(new TransientError('ledger-unavailable', 'the ledger did not answer'))
            : (setup?.deps.ledger.planPayloads(...args) ?? Promise.resolve([])),
      },
    };
    const failed = await runPoll(flaky, config);
    expect(failed.results.map((r) => [r.channel, r.outcome])).toEqual([
      ['stable', 'error'],
      ['beta', 'unchanged'],
    ]);
    expect(await payloadJobs()).toEqual([]);
    const retried = await runPoll(flaky, config);
    expect(retried.results.map((r) => [r.channel, r.outcome, r.jobsSent])).toEqual([
      ['stable', 'seen', 1],
      ['beta', 'unchanged', undefined],
    ]);
    expect(await payloadJobs()).toEqual([next]);
  });

  it('plans the current version of each channel once update is configured, and only once', async () => {
    setup = await startUpdateRig([]);
    const { rig, config } = setup;
    await rig.origin.publishRelease({ channel: 'stable', board, version, artifacts: [] });
    const bytes = signed(5000);
    await rig.origin.publishUpdatePayloads({
      board,
      version,
      payloads: [{ name: MAIN_UPDATE_PAYLOAD, content: bytes }],
    });
    const before = await runPoll(rig.deps, rig.config);
    expect(before.results.map((r) => [r.outcome, r.jobsSent])).toEqual([['new-release', 1]]);
    await drain(rig.worker(), rig.jobsQueue);
    expect(await rig.ledger.getPayload({ board, version, name: MAIN_UPDATE_PAYLOAD })).toBeUndefined();

    const enabled = await runPoll(setup.deps, config);
    expect(enabled.results.map((r) => r.outcome)).toEqual(['unchanged']);
    await drain(setup.worker, rig.jobsQueue);
    const [record] = await rig.ledger.payloadsFor(board, version);
    expect(record?.sha256Hex).toBe(hash('sha256', bytes).toString('hex'));
    await runPoll(setup.deps, config);
    expect(await receiveJobs(rig.jobsQueue, 10, 0)).toEqual([]);
  });

  it('refuses a payload tampered in transit: never stored, never looked up, one alert naming it', async () => {
    setup = await startUpdateRig([]);
    const { rig } = setup;
    const path = `/update/${board}/${version}/${MAIN_UPDATE_PAYLOAD}`;
    rig.origin.inject(new RegExp(`^${path}$`), faults.tamper(150_000));
    const { failures } = await setup.mirror([{ name: MAIN_UPDATE_PAYLOAD, content: signed() }]);
    expect(failures).toBe(0);
    expect(await rig.store.list('update/')).toEqual([]);
    expect(await rig.ledger.payloadsFor(board, version)).toEqual([]);
    const alerts = refusals(await rig.events());
    expect(alerts).toEqual([
      expect.objectContaining({
        channel: 'stable',
        board,
        version,
        artifact: MAIN_UPDATE_PAYLOAD,
        detail: expect.objectContaining({ reason: 'crau-signature', kind: 'update-payload' }),
      }),
    ]);

    // A redelivered job is not fetched again and raises no second alert.
    const before = rig.origin.requests.length;
    const job: UpdatePayloadJob = {
      v: 1,
      kind: 'update-payload',
      source: 'flatcar',
      channel: 'stable',
      board,
      version,
      name: MAIN_UPDATE_PAYLOAD,
      url: `${rig.origin.url}${path}`,
    };
    await setup.deps.jobs.sendJobs([job]);
    await drain(setup.worker, rig.jobsQueue);
    expect(rig.origin.requests.slice(before).filter((r) => r.path.startsWith('/update/'))).toEqual([]);
    expect(refusals(await rig.events())).toHaveLength(1);
  });

  it('refuses a payload signed by a key the config does not name', async () => {
    setup = await startUpdateRig([]);
    await setup.mirror([{ name: MAIN_UPDATE_PAYLOAD, content: signed(50_000, () => [stranger.privateKey]) }]);
    expect(await setup.rig.store.list('update/')).toEqual([]);
    expect(await setup.rig.ledger.payloadsFor(board, version)).toEqual([]);
    expect(await setup.rig.ledger.getPayload({ board, version, name: MAIN_UPDATE_PAYLOAD })).toMatchObject({
      state: 'failed_verification',
      lastError: expect.stringMatching(/^crau-signature: /),
    });
    expect(refusals(await setup.rig.events()).map((e) => e.detail.reason)).toEqual(['crau-signature']);
  });

  it('resumes a download cut short and verifies the whole payload', async () => {
    setup = await startUpdateRig([]);
    const { rig } = setup;
    const path = `/update/${board}/${version}/${MAIN_UPDATE_PAYLOAD}`;
    const cut = rig.origin.inject(new RegExp(`^${path}$`), faults.dropAfter(100_000));
    const bytes = signed(400_000);
    await setup.mirror([{ name: MAIN_UPDATE_PAYLOAD, content: bytes }]);
    expect(cut.applied).toBe(1);
    const ranges = rig.origin.requests.filter((r) => r.path === path && r.range !== undefined);
    expect(ranges.map((r) => [r.range, r.status])).toEqual([['bytes=100000-', 206]]);
    const [record] = await rig.ledger.payloadsFor(board, version);
    expect(record?.sha256Hex).toBe(hash('sha256', bytes).toString('hex'));
    expect(record?.size).toBe(bytes.byteLength);
  });

  it('refuses a payload whose published .sha256 names other bytes', async () => {
    setup = await startUpdateRig([]);
    await setup.mirror([
      {
        name: MAIN_UPDATE_PAYLOAD,
        content: signed(),
        sha256File: `${'ab'.repeat(32)}  ${MAIN_UPDATE_PAYLOAD}\n`,
      },
    ]);
    expect(await setup.rig.store.list('update/')).toEqual([]);
    expect(await setup.rig.ledger.payloadsFor(board, version)).toEqual([]);
    expect(refusals(await setup.rig.events()).map((e) => e.detail.reason)).toEqual(['sha256-mismatch']);
  });

  it('cross-checks a detached OpenPGP .sig where one is published, and refuses one over other bytes', async () => {
    setup = await startUpdateRig([oem]);
    const { rig } = setup;
    const folderPath = `/update/${board}/${version}`;
    await rig.origin.publishUpdatePayloads({
      board,
      version: '1.0.0',
      payloads: [{ name: oem, content: signed(1000), openpgpSignature: true }],
    });
    const main = signed();
    await rig.origin.publishRelease({ channel: 'stable', board, version, artifacts: [] });
    await rig.origin.publishUpdatePayloads({
      board,
      version,
      payloads: [
        { name: MAIN_UPDATE_PAYLOAD, content: main, openpgpSignature: true },
        { name: oem, content: signed(2000) },
      ],
    });
    rig.origin.linkFile(`${folderPath}/${oem}.sig`, `/update/${board}/1.0.0/${oem}.sig`);
    await runPoll(setup.deps, setup.config);
    await drain(setup.worker, rig.jobsQueue);
    expect((await rig.ledger.payloadsFor(board, version)).map((r) => r.name)).toEqual([MAIN_UPDATE_PAYLOAD]);
    expect(await rig.store.list('update/')).toEqual([updatePayloadKey(board, version, MAIN_UPDATE_PAYLOAD)]);
    const [alert] = refusals(await rig.events());
    expect(alert).toMatchObject({ artifact: oem, detail: { reason: 'tampered', kind: 'update-payload' } });
    expect(await receiveJobs(rig.jobsQueue, 10, 0)).toEqual([]);
  });
});
