import { type ChildProcess, spawn } from 'node:child_process';
import { access, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lockDataDir, lockFileName } from '../../local/runtime/data-dir-lock.ts';
import { faults, type SimOrigin, startSimOrigin } from '../../local/sim-origin/sim-origin.ts';
import { projectRoot } from '../../shared/config.ts';
import { bigArtifact, board, MiB, publish, smallArtifact, tempDir, waitFor } from './serve-harness.ts';

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface Running {
  child: ChildProcess;
  result: Promise<Result>;
}

/** `cldist mirror` as a cron job runs it: a child process, not on a TTY. */
function startMirror(args: string[]): Running {
  const child = spawn(process.execPath, [join(projectRoot, 'bin/cldist.js'), 'mirror', ...args], {
    cwd: projectRoot,
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  return {
    child,
    result: new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr }))),
  };
}

const cldistMirror = (args: string[]): Promise<Result> => startMirror(args).result;

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

const artifactGets = (origin: SimOrigin, from: number) =>
  origin.requests
    .slice(from)
    .filter((r) => r.method === 'GET' && !r.path.endsWith('/current/version.txt'))
    .map((r) => r.path);

describe('cldist mirror --once', () => {
  let origin: SimOrigin;
  let dir = '';
  let keyFile = '';
  const common = () => [
    '--once',
    '--origin',
    `${origin.url}/{channel}`,
    '--keyring',
    keyFile,
    '--board',
    board,
    '--artifact',
    'version.txt',
    '--artifact',
    bigArtifact,
    '--artifact',
    smallArtifact,
  ];

  beforeAll(async () => {
    origin = await startSimOrigin();
    dir = await tempDir('mirror-once');
    keyFile = join(dir, 'origin.asc');
    await writeFile(keyFile, origin.publicKeyArmored);
    await publish(origin, 'stable', '4081.2.0');
    await publish(origin, 'beta', '4116.1.0');
    await publish(origin, 'alpha', '4152.0.0');
    await publish(origin, 'lts', '3510.3.1');
  });

  afterAll(async () => {
    await origin.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('mirrors the new releases with JSON lines and exit 0, then a second run downloads nothing', async () => {
    const dataDir = join(dir, 'data');
    const args = [...common(), '--channel', 'stable', '--channel', 'beta', '--data-dir', dataDir, '--json'];
    const first = await cldistMirror(args);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const lines = first.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const verified = lines
      .filter((l) => l.event === 'artifact.verified')
      .map((l) => `${l.channel}/${l.artifact}`);
    expect(verified.sort()).toEqual(
      ['beta', 'stable'].flatMap((c) => [`${c}/${bigArtifact}`, `${c}/${smallArtifact}`, `${c}/version.txt`]),
    );
    const done = lines.find((l) => l.event === 'mirror.done');
    expect(done).toMatchObject({ ok: true, verifiedArtifacts: 6, problems: [], queueStarted: true });
    expect(new Set(done?.newReleases as string[])).toEqual(
      new Set([`flatcar/beta/${board}/4116.1.0`, `flatcar/stable/${board}/4081.2.0`]),
    );
    const mirrored = lines.filter((l) => l.message === 'cldist event release.mirrored').map((l) => l.channel);
    expect(mirrored.sort()).toEqual(['beta', 'stable']);
    for (const [channel, version] of [
      ['stable', '4081.2.0'],
      ['beta', '4116.1.0'],
    ] as const) {
      const folder = join(dataDir, 'mirror', 'flatcar', channel, board, version);
      const files = await readdir(folder);
      expect(files).toEqual(
        expect.arrayContaining([
          bigArtifact,
          `${bigArtifact}.sig`,
          smallArtifact,
          'version.txt',
          'release.json',
        ]),
      );
      expect((await readFile(join(folder, bigArtifact))).length).toBe(3 * MiB + 17);
      const current = await readFile(
        join(dataDir, 'mirror', 'flatcar', channel, board, 'current/version.txt'),
        'utf8',
      );
      expect(current).toContain(`FLATCAR_VERSION_ID=${version}`);
    }
    expect(await exists(join(dataDir, 'mirror', 'flatcar', 'alpha'))).toBe(false);

    const before = origin.requests.length;
    const second = await cldistMirror(args);
    expect(second.stderr).toBe('');
    expect(second.code).toBe(0);
    expect(artifactGets(origin, before)).toEqual([]);
    const polled = origin.requests.slice(before).filter((r) => r.path.endsWith('/current/version.txt'));
    expect(polled.map((r) => r.status).sort()).toEqual([304, 304]);
    const secondDone = second.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((l) => l.event === 'mirror.done');
    // Nothing new: the queue stand-in (and its workers) never started.
    expect(secondDone).toMatchObject({
      ok: true,
      newReleases: [],
      verifiedArtifacts: 0,
      queueStarted: false,
    });
  });

  it('exits 1 naming a tampered required artifact, and leaves nothing of it visible', async () => {
    const dataDir = join(dir, 'tampered');
    const tamper = origin.inject(
      new RegExp(`/alpha/${board}/4152\\.0\\.0/${bigArtifact}$`),
      faults.tamper(MiB + 5),
    );
    const result = await cldistMirror([...common(), '--channel', 'alpha', '--data-dir', dataDir]);
    expect(tamper.applied).toBe(1);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('cldist: mirror incomplete:');
    expect(result.stderr).toContain(`alpha/${board}/4152.0.0/${bigArtifact}: failed_verification`);
    expect(result.stderr).not.toContain(smallArtifact);
    expect(result.stdout).toMatch(/ERROR mirror\.done ok=false/);
    const folder = join(dataDir, 'mirror', 'flatcar', 'alpha', board, '4152.0.0');
    expect(await exists(join(folder, bigArtifact))).toBe(false);
    expect(await exists(join(folder, 'release.json'))).toBe(false);
    expect(await exists(join(dataDir, 'mirror', 'flatcar', 'alpha', board, 'current'))).toBe(false);
    expect(await readdir(folder)).toEqual(expect.arrayContaining([smallArtifact, 'version.txt']));
    expect(() => JSON.parse(result.stdout.split('\n')[0] ?? '')).toThrow();
  });

  it('on SIGTERM stops with exit 1 and nothing half-written visible; the next run finishes the release', async () => {
    const dataDir = join(dir, 'interrupted');
    const path = `/lts/${board}/3510.3.1/${bigArtifact}`;
    const folder = join(dataDir, 'mirror', 'flatcar', 'lts', board, '3510.3.1');
    // The core notices an abort between chunks, so the stalled read must end (timeout, then a resume) first.
    const configFile = join(dir, 'short-timeout.json');
    await writeFile(configFile, JSON.stringify({ limits: { requestTimeoutSeconds: 3 } }));
    const held = origin.inject(`${path}$`, faults.stallAfter(MiB));
    const args = [...common(), '--config', configFile, '--channel', 'lts', '--data-dir', dataDir];
    const running = startMirror(args);
    await waitFor(() => held.applied === 1, 'the held artifact request');
    running.child.kill('SIGTERM');
    const stopped = await running.result;
    expect(stopped.code).toBe(1);
    expect(stopped.stderr).toContain('interrupted before the queue was empty');
    expect(await exists(join(folder, bigArtifact))).toBe(false);
    origin.clearFaults();

    const resumed = await cldistMirror(args);
    expect(resumed.stderr).toBe('');
    expect(resumed.code).toBe(0);
    expect((await readFile(join(folder, bigArtifact))).length).toBe(3 * MiB + 17);
    expect(await exists(join(dataDir, 'mirror', 'flatcar', 'lts', board, 'current/version.txt'))).toBe(true);
  });

  it('exits 1 when a required artifact is missing upstream, naming it', async () => {
    const dataDir = join(dir, 'missing');
    const result = await cldistMirror([
      ...common(),
      '--artifact',
      'flatcar_production_pxe_image.cpio.gz',
      '--channel',
      'stable',
      '--data-dir',
      dataDir,
      '--json',
    ]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`stable/${board}/4081.2.0/flatcar_production_pxe_image.cpio.gz: missing`);
    const done = result.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((l) => l.event === 'mirror.done');
    expect(done).toMatchObject({
      level: 'error',
      ok: false,
      verifiedArtifacts: 3,
      problems: [
        {
          channel: 'stable',
          version: '4081.2.0',
          artifact: 'flatcar_production_pxe_image.cpio.gz',
          state: 'missing',
        },
      ],
    });
  });

  it.each([
    [['--board', 'Not A Board'], '--board Not A Board'],
    [['--origin', 'ftp://example.org/{channel}'], '--origin ftp://example.org/{channel}'],
    [['--channel', 'Bad/Name'], '--channel Bad/Name'],
    [['--artifact', 'x.sig'], '--artifact x.sig'],
    [['--keyring', '/nonexistent/key.asc'], '--keyring /nonexistent/key.asc'],
    [['--bogus'], "unknown option '--bogus'"],
  ])('exits 2 on a bad flag %j, naming it', async (flags, named) => {
    const dataDir = join(dir, 'never');
    const result = await cldistMirror(['--once', '--data-dir', dataDir, ...flags]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(named);
    expect(await exists(dataDir)).toBe(false);
  });

  it('on a data dir that already holds a ledger, a bad flag still exits 2 naming it and leaves it unlocked', async () => {
    // A data dir an earlier run left: the config is refused before the runner takes the data dir's lock.
    const dataDir = join(dir, 'claimed-early');
    await mkdir(join(dataDir, 'ledger'), { recursive: true });
    const result = await cldistMirror(['--once', '--data-dir', dataDir, '--board', 'Not A Board']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--board Not A Board');
    expect(await exists(join(dataDir, lockFileName))).toBe(false);
    const again = lockDataDir(dataDir);
    again.release();
  });

  it.each([
    ['a first run', false],
    ['a later run', true],
  ])('%s exits 2 naming the holder when another runner holds the data dir', async (_run, hasLedger) => {
    const dataDir = join(dir, `held-${hasLedger}`);
    await mkdir(join(dataDir, ...(hasLedger ? ['ledger'] : [])), { recursive: true });
    const held = lockDataDir(dataDir);
    try {
      const result = await cldistMirror([...common(), '--channel', 'lts', '--data-dir', dataDir]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(
        `data dir ${dataDir} is in use by another cldist serve (pid ${process.pid})`,
      );
    } finally {
      held.release();
    }
  });

  it('exits 2 without --once, pointing at cldist serve', async () => {
    const result = await cldistMirror(['--data-dir', join(dir, 'never')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--once');
  });
});
