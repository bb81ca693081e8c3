import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateAdminToken } from '../../local/admin-token.ts';
import { createApiApp } from '../../shared/api/app.ts';
import { type RunningServer, serveNode } from '../../shared/api/node-server.ts';
import { parseConfig, projectRoot } from '../../shared/config.ts';
import { createDynamoInstanceRepository } from '../../shared/instances/repository.ts';
import { createDynamoLedger, type Ledger } from '../../shared/ledger/ledger.ts';
import { createSqsJobQueue } from '../../shared/mirror/deps.ts';
import { createLocalStore } from '../../shared/store/local-store.ts';
import { emulatorClients, freshQueue, freshTable } from '../support/emulators.ts';
import { type SigV4Gateway, startSigV4Gateway } from '../support/sigv4-gateway.ts';

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

const awsKeys = { accessKeyId: 'AKIDCLDISTTEST', secretAccessKey: 'cldist-test-secret' };

function cldist(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(projectRoot, 'bin/cldist.js'), ...args],
      { timeout: 30_000, env: { ...process.env, ...env } },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const config = parseConfig({
  channels: [{ name: 'stable', baseUrl: 'https://{channel}.release.example.org' }],
  boards: ['amd64-usr'],
  artifacts: [{ name: 'version.txt' }, { name: 'image.bin' }],
});
const board = 'amd64-usr';
const plans = ['version.txt', 'image.bin'].map((name) => ({
  name,
  required: true,
  url: `https://stable.release.example.org/${board}/x/${name}`,
  signatureUrl: `https://stable.release.example.org/${board}/x/${name}.sig`,
}));
const facts = {
  size: 1,
  sha512: 'ab',
  signingKeyFingerprint: 'F'.repeat(40),
  primaryKeyFingerprint: 'E'.repeat(40),
  signatureCreated: '2026-11-01T00:00:00.000Z',
  hashAlgorithm: 'SHA512',
};

/** Three releases: one mirrored, one held only by an unknown signer, one with a tampered artifact. */
async function seed(ledger: Ledger): Promise<void> {
  const release = (version: string) => ({ source: 'flatcar', channel: 'stable', board, version });
  for (const version of ['4000.0.0', '4000.1.0', '4000.2.0'])
    await ledger.claimRelease(release(version), plans);
  for (const artifact of ['version.txt', 'image.bin']) {
    await ledger.markVerified({ ...release('4000.0.0'), artifact }, facts);
    await ledger.markAwaitingTrust(
      { ...release('4000.1.0'), artifact },
      { issuer: '0123456789ABCDEF', trustVersion: '"etag-1"', detail: 'unknown-key: not in the keyring' },
    );
  }
  await ledger.completeFinalize(release('4000.0.0'));
  await ledger.markVerified({ ...release('4000.2.0'), artifact: 'version.txt' }, facts);
  await ledger.markFailedVerification(
    { ...release('4000.2.0'), artifact: 'image.bin' },
    'tampered: data differs',
  );
}

describe('cldist releases (CLI against the admin API)', () => {
  const clients = emulatorClients();
  let dir: string;
  let server: RunningServer;
  let gateway: SigV4Gateway;
  let ledger: Ledger;
  let queueUrl: string;
  let connection: string[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cldist-releases-cli-'));
    const table = await freshTable(clients);
    await waitUntilTableExists(
      { client: clients.dynamodb, maxWaitTime: 10, minDelay: 0.05, maxDelay: 0.2 },
      { TableName: table },
    );
    queueUrl = (await freshQueue(clients, 'jobs')).url;
    ledger = createDynamoLedger(clients.doc, table);
    await seed(ledger);
    const { token } = await loadOrCreateAdminToken(join(dir, 'data'));
    const deps = {
      instances: createDynamoInstanceRepository(clients.doc, { table }),
      bodies: createLocalStore(join(dir, 'configs')),
      clock: () => new Date(),
      releases: { ledger, jobs: createSqsJobQueue(clients.sqs, queueUrl) },
    };
    server = await serveNode(createApiApp({ ...deps, adminAuth: { kind: 'bearer', token } }, config), {
      host: '127.0.0.1',
      port: 0,
    });
    gateway = await startSigV4Gateway(
      createApiApp({ ...deps, adminAuth: { kind: 'iam' } }, config),
      awsKeys,
      'eu-west-1',
    );
    connection = ['--api', server.url, '--data-dir', join(dir, 'data')];
  });

  afterAll(async () => {
    await server?.close();
    await gateway?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function sentJobs(): Promise<string[]> {
    const out = await clients.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
    );
    return (out.Messages ?? [])
      .map((m) => (JSON.parse(m.Body ?? '{}') as { artifact: string }).artifact)
      .sort();
  }

  it('lists every release with its state, and what holds it', async () => {
    const run = await cldist(['releases', 'list', ...connection]);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    const lines = run.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^SOURCE\s+CHANNEL\s+BOARD\s+VERSION\s+STATE\s+DETAIL$/);
    expect(lines[1]).toMatch(/^flatcar\s+stable\s+amd64-usr\s+4000\.0\.0\s+mirrored$/);
    expect(lines[2]).toMatch(
      /^flatcar\s+stable\s+amd64-usr\s+4000\.1\.0\s+awaiting-trust\s+2 awaiting trust in key 0123456789ABCDEF$/,
    );
    expect(lines[3]).toMatch(
      /^flatcar\s+stable\s+amd64-usr\s+4000\.2\.0\s+failed\s+image\.bin failed: tampered$/,
    );
  });

  it('narrows the list to one state', async () => {
    const run = await cldist(['releases', 'list', '--state', 'awaiting-trust', '--json', ...connection]);
    expect(run.code).toBe(0);
    const releases = JSON.parse(run.stdout) as { version: string; state: string }[];
    expect(releases.map((r) => [r.version, r.state])).toEqual([['4000.1.0', 'awaiting-trust']]);
  });

  it('signs with SigV4 from the standard credential chain, which the gateway checks with the SDK signer', async () => {
    const env = { AWS_ACCESS_KEY_ID: awsKeys.accessKeyId, AWS_SECRET_ACCESS_KEY: awsKeys.secretAccessKey };
    const run = await cldist(
      [
        'releases',
        'list',
        '--state',
        'mirrored',
        '--api',
        gateway.url,
        '--auth',
        'iam',
        '--region',
        'eu-west-1',
      ],
      env,
    );
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toMatch(/4000\.0\.0\s+mirrored/);
    expect(gateway.accepted).toHaveLength(1);
    expect(gateway.accepted[0]).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDCLDISTTEST\/\d{8}\/eu-west-1\/execute-api\/aws4_request/,
    );

    const forged = await cldist(
      ['releases', 'list', '--api', gateway.url, '--auth', 'iam', '--region', 'eu-west-1'],
      {
        ...env,
        AWS_SECRET_ACCESS_KEY: 'not-the-secret',
      },
    );
    expect(forged.code).toBe(2);
    expect(forged.stderr).toMatch(/failed with 403.*execute-api:Invoke/);
    expect(gateway.refused).toHaveLength(1);
  });

  it('re-enqueues a release awaiting trust at once', async () => {
    const run = await cldist(['releases', 'retry', 'flatcar/stable/amd64-usr/4000.1.0', ...connection]);
    expect(run).toMatchObject({
      code: 0,
      stdout: 'sent 2 job(s) for flatcar/stable/amd64-usr/4000.1.0: version.txt, image.bin\n',
    });
    expect(await sentJobs()).toEqual(['image.bin', 'version.txt']);
    const detail = await ledger.getRelease({
      source: 'flatcar',
      channel: 'stable',
      board,
      version: '4000.1.0',
    });
    expect(detail?.artifactStates.map((a) => a.state)).toEqual(['pending', 'pending']);
  });

  it('asks for confirmation before reopening a final refusal, and sends nothing without it', async () => {
    const refused = await cldist(['releases', 'retry', 'flatcar/stable/amd64-usr/4000.2.0', ...connection]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(
      'image.bin of flatcar/stable/amd64-usr/4000.2.0 failed verification for good',
    );
    expect(refused.stderr).toContain('pass --yes');
    expect(await sentJobs()).toEqual([]);

    const confirmed = await cldist([
      'releases',
      'retry',
      'flatcar/stable/amd64-usr/4000.2.0',
      '--yes',
      ...connection,
    ]);
    expect(confirmed).toMatchObject({
      code: 0,
      stdout: 'sent 1 job(s) for flatcar/stable/amd64-usr/4000.2.0: image.bin\n',
    });
    expect(await sentJobs()).toEqual(['image.bin']);
  });

  it('says a mirrored release has nothing to retry, and an unknown one was never claimed', async () => {
    const mirrored = await cldist(['releases', 'retry', 'flatcar/stable/amd64-usr/4000.0.0', ...connection]);
    expect(mirrored).toMatchObject({
      code: 0,
      stdout: 'nothing to retry: flatcar/stable/amd64-usr/4000.0.0 is mirrored\n',
    });
    const unknown = await cldist(['releases', 'retry', 'flatcar/stable/amd64-usr/9.9.9', ...connection]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(
      /failed with 404: release flatcar\/stable\/amd64-usr\/9\.9\.9 was never claimed/,
    );
  });

  it('refuses bad input with exit 2 and an error naming the argument or option', async () => {
    const cases: [string[], RegExp][] = [
      [
        ['releases', 'retry', 'stable/amd64-usr/4000.1.0'],
        /argument 'release'.*not SOURCE\/CHANNEL\/BOARD\/VERSION/,
      ],
      [['releases', 'retry', 'flatcar/stable/amd64-usr/4.0/x'], /argument 'release'/],
      [['releases', 'retry', 'Flatcar/stable/amd64-usr/1.0'], /argument 'release'.*source "Flatcar"/],
      [['releases', 'retry', 'flatcar/Stable/amd64-usr/1.0'], /argument 'release'.*channel "Stable"/],
      [['releases', 'retry', 'flatcar/stable/amd64-usr/1.0-rc'], /argument 'release'.*version "1\.0-rc"/],
      [['releases', 'list', '--state', 'broken'], /option '--state <state>' argument 'broken' is invalid/],
      [['releases', 'list', '--auth', 'kerberos'], /option '--auth <mode>' argument 'kerberos' is invalid/],
      [['releases', 'retry'], /missing required argument 'release'/],
    ];
    for (const [args, message] of cases) {
      const run = await cldist([...args, ...connection]);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stderr, args.join(' ')).toMatch(message);
    }
  });

  it('answers 400 naming the parameter to a malformed request and 401 without the admin token', async () => {
    const bad = await fetch(`${server.url}/v1/releases?state=nope`, {
      headers: { authorization: `Bearer ${(await loadOrCreateAdminToken(join(dir, 'data'))).token}` },
    });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { path: 'state' } });
    expect((await fetch(`${server.url}/v1/releases`)).status).toBe(401);
    expect(
      (await fetch(`${server.url}/v1/releases/flatcar/stable/amd64-usr/4000.1.0/retry`, { method: 'POST' }))
        .status,
    ).toBe(401);
  });
});
