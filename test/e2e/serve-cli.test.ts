import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startSimOrigin } from '../../local/sim-origin/sim-origin.ts';
import { projectRoot } from '../../shared/config.ts';
import { bigArtifact, board, publish, smallArtifact, tempDir, waitFor } from './serve-harness.ts';

interface Run {
  child: ChildProcess;
  lines: Array<Record<string, unknown>>;
  stderr: string[];
  exited: Promise<number | null>;
}

/** `cldist serve` as a user runs it, not on a TTY, so stdout is one JSON object per line. */
function cldist(args: string[]): Run {
  const child = spawn(process.execPath, [join(projectRoot, 'bin/cldist.js'), 'serve', ...args], {
    cwd: projectRoot,
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const run: Run = {
    child,
    lines: [],
    stderr: [],
    exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))),
  };
  let buffered = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    for (const line of parts) run.lines.push(JSON.parse(line) as Record<string, unknown>);
  });
  child.stderr?.on('data', (chunk: Buffer) => run.stderr.push(chunk.toString('utf8')));
  return run;
}

describe('cldist serve on the command line', () => {
  let dir = '';
  let running: Run | undefined;

  afterEach(async () => {
    if (running !== undefined && running.child.exitCode === null) {
      running.child.kill('SIGKILL');
      await running.exited;
    }
    running = undefined;
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it('--demo --once mirrors the first simulated releases, logs JSON lines and exits 0', async () => {
    dir = await tempDir('serve-cli-once');
    const dataDir = join(dir, 'data');
    running = cldist(['--demo', '--once', '--port', '0', '--data-dir', dataDir]);
    const code = await running.exited;
    expect(running.stderr.join('')).toBe('');
    expect(code).toBe(0);
    const events = running.lines.map((l) => l.event);
    expect(events).toContain('http.listening');
    const moved = running.lines.filter((l) => l.event === 'mirror.current_moved').map((l) => l.channel);
    expect(moved.sort()).toEqual(['beta', 'stable']);
    const notified = running.lines.filter((l) => l.message === 'cldist event release.mirrored');
    expect(notified.map((l) => l.channel).sort()).toEqual(['beta', 'stable']);
    for (const channel of ['beta', 'stable']) {
      const finalized = running.lines.findIndex(
        (l) => l.event === 'release.finalized' && l.channel === channel,
      );
      const mirrored = running.lines.findIndex(
        (l) => l.message === 'cldist event release.mirrored' && l.channel === channel,
      );
      expect(finalized, `release.finalized of ${channel}`).toBeGreaterThanOrEqual(0);
      const moved = running.lines.findIndex(
        (l) => l.event === 'mirror.current_moved' && l.channel === channel,
      );
      expect(finalized, `release.finalized before release.mirrored for ${channel}`).toBeLessThan(mirrored);
      expect(moved, `mirror.current_moved between them for ${channel}`).toBeGreaterThan(finalized);
      expect(moved).toBeLessThan(mirrored);
    }
    expect(events).toContain('shutdown.done');
    const current = await readFile(join(dataDir, 'mirror/stable/amd64-usr/current/version.txt'), 'utf8');
    expect(current).toContain('FLATCAR_VERSION_ID=4081.2.0');
    expect((await stat(join(dataDir, 'admin-token'))).mode & 0o777).toBe(0o600);
  });

  it('serves until SIGTERM, then shuts down cleanly with exit code 0', async () => {
    dir = await tempDir('serve-cli-signal');
    const dataDir = join(dir, 'data');
    running = cldist(['--demo', '--port', '0', '--data-dir', dataDir, '--publish-seconds', '3600']);
    const run = running;
    const listening = await waitFor(
      () => run.lines.find((l) => l.event === 'http.listening'),
      'the listening line',
    );
    const url = String(listening.url);
    await waitFor(
      () => run.lines.some((l) => l.event === 'mirror.current_moved'),
      'a first release mirrored',
    );
    const token = (await readFile(join(dataDir, 'admin-token'), 'utf8')).trim();
    const status = await fetch(`${url}/v1/status`, { headers: { Authorization: `Bearer ${token}` } });
    expect(status.status).toBe(200);
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    expect(run.lines.find((l) => l.event === 'shutdown.signal')).toMatchObject({ signal: 'SIGTERM' });
    expect(run.lines.at(-1)).toMatchObject({ event: 'shutdown.done' });
    await expect(fetch(`${url}/v1/status`)).rejects.toThrow();
  });

  it.each([
    ['a second signal only says shutdown is under way, and the shutdown finishes', 2, 0],
    ['a third signal forces the exit', 3, 143],
  ])('during a slow shutdown, %s; serve.pid never stays behind', async (_what, signals, exitCode) => {
    dir = await tempDir('serve-cli-slow-stop');
    const dataDir = join(dir, 'data');
    // A webhook that never answers keeps the shutdown waiting for its delivery (10 s grace).
    const sink = createServer(() => {});
    sink.listen(0, '127.0.0.1');
    await once(sink, 'listening');
    const sim = await startSimOrigin();
    try {
      await publish(sim, 'stable', '4081.2.0');
      const config = join(dir, 'config.json');
      await writeFile(join(dir, 'sim.asc'), sim.publicKeyArmored);
      await writeFile(
        config,
        JSON.stringify({
          channels: [{ name: 'stable', baseUrl: sim.baseUrl }],
          boards: [board],
          artifacts: [{ name: 'version.txt' }, { name: bigArtifact }, { name: smallArtifact }],
          keyring: { files: [join(dir, 'sim.asc')], trustedFingerprints: [sim.primaryFingerprint] },
          notifications: { webhooks: [`http://127.0.0.1:${(sink.address() as AddressInfo).port}/hook`] },
        }),
      );
      running = cldist(['--config', config, '--port', '0', '--data-dir', dataDir]);
      const run = running;
      await waitFor(() => run.lines.some((l) => l.event === 'mirror.current_moved'), 'a release mirrored');
      expect(await readFile(join(dataDir, 'serve.pid'), 'utf8')).toBe(`${run.child.pid}\n`);
      run.child.kill('SIGTERM');
      await waitFor(() => run.lines.some((l) => l.event === 'shutdown.started'), 'shutdown.started');
      run.child.kill('SIGTERM');
      await waitFor(
        () => run.lines.some((l) => l.event === 'shutdown.already_in_progress'),
        'shutdown.already_in_progress',
      );
      expect(run.stderr.join('')).toMatch(/already shutting down/);
      if (signals === 3) run.child.kill('SIGTERM');
      expect(await run.exited).toBe(exitCode);
      const events = run.lines.map((l) => l.event);
      expect(events.includes('shutdown.done')).toBe(signals === 2);
      expect(events.includes('shutdown.forced')).toBe(signals === 3);
      await expect(stat(join(dataDir, 'serve.pid'))).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      sink.closeAllConnections();
      sink.close();
      await sim.close();
    }
  });

  it('refuses a bad --store and a bad --port with a message naming the flag', async () => {
    dir = await tempDir('serve-cli-bad');
    running = cldist(['--store', 'http://bucket', '--data-dir', join(dir, 'data')]);
    expect(await running.exited).toBe(2);
    expect(running.stderr.join('')).toMatch(/--store http:\/\/bucket: expected s3:\/\/bucket/);
    running = cldist(['--port', 'eighty', '--data-dir', join(dir, 'data')]);
    expect(await running.exited).not.toBe(0);
    expect(running.stderr.join('')).toMatch(/--port.*expected a whole number/);
  });
});
