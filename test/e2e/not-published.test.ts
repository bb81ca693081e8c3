import { spawn } from 'node:child_process';
import { access, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SimOrigin, startSimOrigin } from '../../local/sim-origin/sim-origin.ts';
import { projectRoot } from '../../shared/config.ts';
import { board, publish, smallArtifact, tempDir } from './serve-harness.ts';

interface Result {
  code: number | null;
  stdout: string;
  lines: Array<Record<string, unknown>>;
  stderr: string;
}

function cldistMirror(args: string[]): Promise<Result> {
  const child = spawn(process.execPath, [join(projectRoot, 'bin/cldist.js'), 'mirror', ...args], {
    cwd: projectRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  return new Promise((resolve) =>
    child.on('close', (code) => {
      const lines = stdout
        .trim()
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      resolve({ code, stdout, lines, stderr });
    }),
  );
}

/** The core's warning, whether the host logs core messages as their own event or under `core`. */
const notPublishedLines = (result: Result) =>
  result.lines.filter(
    (l) => l.event === 'poll.not_published' || (l.event === 'core' && l.msg === 'poll.not_published'),
  );

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

describe('a board the origin does not publish (current/version.txt answers 404)', () => {
  let origin: SimOrigin;
  let dir = '';
  let configFile = '';
  const unpublished = 'arm64-usr';

  beforeAll(async () => {
    origin = await startSimOrigin();
    dir = await tempDir('not-published');
    const keyFile = join(dir, 'origin.asc');
    await writeFile(keyFile, origin.publicKeyArmored);
    await publish(origin, 'stable', '4081.2.0');
    configFile = join(dir, 'config.json');
    await writeFile(
      configFile,
      JSON.stringify({
        channels: [{ name: 'stable', baseUrl: `${origin.url}/{channel}` }],
        boards: [board, unpublished],
        artifacts: [{ name: 'version.txt' }, { name: smallArtifact }],
        keyring: { files: [keyFile], trustedFingerprints: [origin.primaryFingerprint] },
      }),
    );
  });

  afterAll(async () => {
    await origin.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('is poll.not_published once, not a poll failure: the other board is mirrored and mirror --once exits 0', async () => {
    const dataDir = join(dir, 'data');
    const args = ['--once', '--config', configFile, '--data-dir', dataDir, '--json'];
    const polls = () =>
      origin.requests.filter((r) => r.path === `/stable/${unpublished}/current/version.txt`).length;

    const first = await cldistMirror(args);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const warned = notPublishedLines(first);
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({
      level: 'warn',
      channel: 'stable',
      board: unpublished,
      url: `${origin.url}/stable/${unpublished}/current/version.txt`,
    });
    expect(first.lines.some((l) => l.event === 'poll.origin_unreachable')).toBe(false);
    const done = first.lines.find((l) => l.event === 'mirror.done');
    expect(done).toMatchObject({ ok: true, problems: [], newReleases: [`flatcar/stable/${board}/4081.2.0`] });
    expect(await exists(join(dataDir, 'mirror/stable', board, '4081.2.0', smallArtifact))).toBe(true);
    expect(await exists(join(dataDir, 'mirror/stable', unpublished))).toBe(false);

    const polledBefore = polls();
    const second = await cldistMirror(args);
    expect(second.code).toBe(0);
    expect(polls()).toBeGreaterThan(polledBefore);
    expect(notPublishedLines(second)).toEqual([]);
    expect(second.lines.find((l) => l.event === 'mirror.done')).toMatchObject({ ok: true, problems: [] });
  });

  it('is mirrored like any other board once upstream publishes it', async () => {
    const dataDir = join(dir, 'republished');
    const args = ['--once', '--config', configFile, '--data-dir', dataDir, '--json'];
    expect(notPublishedLines(await cldistMirror(args))).toHaveLength(1);
    await origin.publishRelease({
      channel: 'stable',
      board: unpublished,
      version: '4081.2.0',
      artifacts: [{ name: smallArtifact, size: 4096 }],
    });
    const published = await cldistMirror(args);
    expect(published.code).toBe(0);
    expect(notPublishedLines(published)).toEqual([]);
    expect(await exists(join(dataDir, 'mirror/stable', unpublished, '4081.2.0', smallArtifact))).toBe(true);
  });
});
