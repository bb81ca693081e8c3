import { execFileSync, spawn } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetQueueAttributesCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createMirrorApp } from '../../local/mirror-http.ts';
import { type RunningServer, serveNode } from '../../shared/api/node-server.ts';
import { projectRoot } from '../../shared/config.ts';
import type { CldistEvent } from '../../shared/messages.ts';
import { runPoll } from '../../shared/mirror/poller.ts';
import { createWebhookNotifier, type WebhookGiveUp } from '../../shared/notify/index.ts';
import { clients, drain, type MirrorRig, startRig } from '../integration/mirror-harness.ts';
import { freshQueue } from '../support/emulators.ts';
import { randomBytes } from '../support/pgp-fixtures.ts';
import { waitFor } from './serve-harness.ts';

const board = 'amd64-usr';
const image = 'flatcar_production_openstack_image.img.bz2';
const script = join(projectRoot, 'examples/import-openstack/import-openstack.ts');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  lines: Record<string, unknown>[];
}

/** The reference subscriber as an operator runs it, with a PATH that can hold a stand-in `openstack`. */
function subscriber(
  args: string[],
  path = process.env.PATH ?? '',
): { done: Promise<Run>; stderr: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: projectRoot,
    env: { ...process.env, PATH: path },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 50_000);
  const done = new Promise<Run>((resolve) => {
    child.once('close', (code) => {
      clearTimeout(timer);
      const lines = stderr
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      resolve({ code, stdout, stderr, lines });
    });
  });
  return { done, stderr: () => stderr };
}

async function queueDepth(url: string): Promise<number> {
  const out = await clients.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return (
    Number(out.Attributes?.ApproximateNumberOfMessages ?? 0) +
    Number(out.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0)
  );
}

describe('examples/import-openstack: release.mirrored to openstack image create', () => {
  let rig: MirrorRig;
  let mirror: RunningServer;
  let dir: string;
  let keyFile: string;
  let common: string[];
  let mirroredBody: string;
  const qcow = randomBytes(200_000, 5);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cldist-import-'));
    rig = await startRig({ channels: ['stable'], artifacts: [{ name: 'version.txt' }, { name: image }] });
    await rig.origin.publishRelease({
      channel: 'stable',
      board,
      version: '4081.2.0',
      artifacts: [{ name: image, content: execFileSync('bzip2', ['-c'], { input: qcow }) }],
    });
    await runPoll(rig.deps, rig.config);
    expect((await drain(rig.worker(), rig.jobsQueue)).failures).toBe(0);
    mirror = await serveNode(createMirrorApp(rig.store), { host: '127.0.0.1', port: 0 });
    keyFile = join(dir, 'origin.asc');
    await writeFile(keyFile, rig.origin.publicKeyArmored);
    common = [
      '--mirror-url',
      `${mirror.url}/mirror`,
      '--keyring',
      keyFile,
      '--sqs-endpoint',
      inject('fauxqsEndpoint'),
      '--wait-seconds',
      '1',
      '--once',
    ];
    const events = await rig.events();
    const mirrored = events.find((event) => event.event === 'release.mirrored');
    mirroredBody = JSON.stringify(mirrored);
  }, 60_000);

  afterAll(async () => {
    await mirror?.close();
    await rig?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function queueWith(...bodies: string[]): Promise<string> {
    const queue = await freshQueue(clients, 'import');
    for (const body of bodies) {
      await clients.sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: body }));
    }
    return queue.url;
  }

  it('takes release.mirrored from SQS, verifies the image and prints the Glance command for the expanded qcow2', async () => {
    const queue = await queueWith(mirroredBody);
    const work = join(dir, 'work-sqs');
    const run = await subscriber([...common, '--sqs-queue-url', queue, '--work-dir', work]).done;
    expect(run.code, run.stderr).toBe(0);
    const qcowPath = join(work, `flatcar-stable-${board}-4081.2.0`, 'flatcar_production_openstack_image.img');
    expect(run.stdout).toBe(
      `openstack image create --disk-format qcow2 --container-format bare --file ${qcowPath} ` +
        '--property os_distro=flatcar --property os_version=4081.2.0 --property architecture=x86_64 ' +
        `--property flatcar_channel=stable 'Flatcar Container Linux stable 4081.2.0 (amd64-usr)'\n`,
    );
    expect(Buffer.from(await readFile(qcowPath)).equals(Buffer.from(qcow))).toBe(true);
    expect(await queueDepth(queue)).toBe(0);
  });

  it('reads the SNS envelope too, and runs the command with --execute', async () => {
    const envelope = JSON.stringify({ Type: 'Notification', MessageId: 'm-1', Message: mirroredBody });
    const queue = await queueWith(envelope);
    const bin = join(dir, 'bin');
    const recorded = join(dir, 'openstack-args.json');
    execFileSync('mkdir', ['-p', bin]);
    await writeFile(
      join(bin, 'openstack'),
      `#!/bin/sh\nnode -e 'require("fs").writeFileSync(process.argv[1], JSON.stringify(process.argv.slice(2)))' ${recorded} "$@"\n`,
    );
    await chmod(join(bin, 'openstack'), 0o755);
    const work = join(dir, 'work-execute');
    const run = await subscriber(
      [...common, '--sqs-queue-url', queue, '--work-dir', work, '--execute'],
      `${bin}:${process.env.PATH ?? ''}`,
    ).done;
    expect(run.code, run.stderr).toBe(0);
    const args = JSON.parse(await readFile(recorded, 'utf8')) as string[];
    expect(args.slice(0, 2)).toEqual(['image', 'create']);
    expect(args.at(-1)).toBe('Flatcar Container Linux stable 4081.2.0 (amd64-usr)');
    expect(run.lines.map((line) => line.event)).toContain('import.done');
  });

  it.each([
    ['a malformed message', 'not json'],
    [
      'another event',
      JSON.stringify({
        event: 'signing_key.expiring',
        source: '*',
        channel: '*',
        board: '*',
        at: '2027-02-20T12:00:00.000Z',
        detail: { primaryKeyFingerprint: 'A'.repeat(40), signingKeyFingerprint: 'B'.repeat(40) },
      }),
    ],
    [
      'an alert',
      JSON.stringify({
        event: 'artifact.missing',
        source: 'flatcar',
        channel: 'stable',
        board,
        version: '4081.2.1',
        artifact: image,
        at: '2026-12-03T00:00:00.000Z',
        detail: { url: 'https://stable.release.flatcar-linux.net/x.sig', message: 'answered 404' },
      }),
    ],
  ])('refuses %s with exit 2, no command, and drops the message', async (_what, body) => {
    const queue = await queueWith(body);
    const run = await subscriber([...common, '--sqs-queue-url', queue, '--work-dir', join(dir, 'work-bad')])
      .done;
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.lines.find((line) => line.event === 'import.unusable_event')?.error).toMatch(
      /not JSON|not a cldist event|is not release\.mirrored/,
    );
    expect(await queueDepth(queue)).toBe(0);
  });

  it('refuses an image that fails cldist verify with exit 1, no command, nothing left, and keeps the message', async () => {
    const key = `stable/${board}/4081.2.0/${image}`;
    const good = await rig.store.get(key);
    await rig.store.put(key, randomBytes(1000, 9));
    try {
      const queue = await queueWith(mirroredBody);
      const work = join(dir, 'work-refused');
      const run = await subscriber([...common, '--sqs-queue-url', queue, '--work-dir', work]).done;
      expect(run.code).toBe(1);
      expect(run.stdout).toBe('');
      expect(run.lines.find((line) => line.event === 'import.failed')?.error).toMatch(
        /cldist verify refused .*bad signature \((tampered|truncated)\)/,
      );
      await expect(readFile(join(work, `flatcar-stable-${board}-4081.2.0`, image))).rejects.toThrow(/ENOENT/);
      expect(await queueDepth(queue)).toBe(1);
    } finally {
      if (good !== undefined) await rig.store.put(key, good);
    }
  });

  function webhookSubscriber(work: string) {
    const started = subscriber([
      '--mirror-url',
      `${mirror.url}/mirror`,
      '--keyring',
      keyFile,
      '--webhook',
      '127.0.0.1:0',
      '--once',
      '--work-dir',
      join(dir, work),
    ]);
    const url = waitFor(
      () => /"event":"webhook.listening","url":"([^"]+)"/.exec(started.stderr())?.[1],
      'the webhook listening line',
    );
    return { url, done: started.done };
  }

  it("takes release.mirrored from cldist's own webhook notifier and answers 200", async () => {
    const started = webhookSubscriber('work-webhook');
    const giveUps: WebhookGiveUp[] = [];
    const notifier = createWebhookNotifier([await started.url], {
      attempts: 1,
      timeoutMs: 45_000,
      onGiveUp: (failure) => giveUps.push(failure),
    });
    await notifier.publish(JSON.parse(mirroredBody) as CldistEvent);
    await notifier.drain();
    expect(giveUps).toEqual([]);
    const run = await started.done;
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(
      /^openstack image create .* 'Flatcar Container Linux stable 4081\.2\.0 \(amd64-usr\)'\n$/,
    );
  });

  it('answers a webhook body it cannot use with 400, which cldist does not retry, and exits 2', async () => {
    const started = webhookSubscriber('work-webhook-bad');
    const answer = await fetch(await started.url, {
      method: 'POST',
      body: '{"event":"release.mirrored"}',
      headers: { 'content-type': 'application/json' },
    });
    expect(answer.status).toBe(400);
    const run = await started.done;
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
  });

  it('refuses a bad mirror URL and a missing source as usage errors', async () => {
    const bad = await subscriber(['--mirror-url', 'notaurl', '--webhook', '127.0.0.1:0']).done;
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("option '--mirror-url <url>' argument 'notaurl' is invalid");
    const neither = await subscriber(['--mirror-url', mirror.url]).done;
    expect(neither.code).toBe(2);
    expect(neither.stderr).toContain('give exactly one of --sqs-queue-url and --webhook');
  });
});
