import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generateSimKey } from '../../local/sim-origin/signing.ts';
import { type SimOrigin, startSimOrigin } from '../../local/sim-origin/sim-origin.ts';
import { projectRoot } from '../../shared/config.ts';
import { mountTmpfs, probeTmpfs, type Tmpfs } from '../support/tmpfs.ts';
import {
  adminHeaders,
  board,
  MiB,
  publish,
  type Started,
  serveFor,
  simConfig,
  tempDir,
  waitFor,
} from './serve-harness.ts';

const tmpfs = await probeTmpfs();
const skipped = tmpfs.available ? '' : ` (skipped: ${tmpfs.reason})`;
const ignition = {
  ignition: { version: '3.4.0' },
  storage: { files: [{ path: '/etc/hostname', contents: { source: 'data:,web-1' } }] },
};

describe.skipIf(!tmpfs.available)(`cldist serve on a full disk${skipped}`, () => {
  let dir = '';
  let disk: Tmpfs;
  let sim: SimOrigin;
  let started: Started | undefined;

  beforeAll(async () => {
    dir = await tempDir('disk-full');
    disk = await mountTmpfs(join(dir, 'data'), 48 * MiB);
    sim = await startSimOrigin();
  });

  afterAll(async () => {
    await started?.handle.close();
    await sim?.close();
    await disk?.unmount();
    await rm(dir, { recursive: true, force: true });
  });

  it('stays up, keeps serving registered configs, pauses mirroring and resumes once space is freed', async () => {
    await publish(sim, 'stable', '4081.2.0');
    const config = await simConfig(sim, dir, ['stable']);
    started = await serveFor(config, disk.path, { minFreeDiskMiB: 8, diskCheckEveryMs: 100 });
    const { handle, records } = started;
    await handle.drain();
    const put = await fetch(`${handle.url}/v1/instances/web-1`, {
      method: 'PUT',
      headers: { ...adminHeaders(handle), 'Content-Type': 'application/json' },
      body: JSON.stringify({ ignition }),
    });
    expect(put.status).toBe(201);
    const { ignitionUrl } = (await put.json()) as { ignitionUrl: string };

    const ballast = await disk.fill();
    await waitFor(() => records.some((r) => r.event === 'mirror.paused_low_disk'), 'mirror.paused_low_disk');
    expect((await handle.status()).disk).toMatchObject({ paused: true, minFreeMiB: 8 });
    const page = await fetch(`${handle.url}/`, { headers: adminHeaders(handle) });
    expect(await page.text()).toContain('Mirroring is paused');

    // Past the inline limit, so the body needs the full config store rather than a few bytes of ledger.
    const large = {
      ignition: { version: '3.4.0' },
      storage: { files: [{ path: '/etc/large', contents: { source: `data:,${'x'.repeat(64 * 1024)}` } }] },
    };
    const refused = await fetch(`${handle.url}/v1/instances/web-2`, {
      method: 'PUT',
      headers: { ...adminHeaders(handle), 'Content-Type': 'application/json' },
      body: JSON.stringify({ ignition: large }),
    });
    expect(refused.status).toBe(503);
    for (let i = 0; i < 20; i++) {
      const served = await fetch(ignitionUrl);
      expect(served.status).toBe(200);
      expect(await served.json()).toEqual(ignition);
    }

    await publish(sim, 'stable', '4081.2.1');
    await unlink(ballast.path);
    await waitFor(() => records.some((r) => r.event === 'mirror.resumed'), 'mirror.resumed');
    await waitFor(
      () => handle.pollNow().then((report) => report.results.every((r) => r.outcome !== 'error')),
      'a poll that reaches the ledger again',
    );
    await handle.drain();
    const current = await fetch(`${handle.url}/mirror/stable/${board}/current/version.txt`);
    expect(await current.text()).toContain('FLATCAR_VERSION_ID=4081.2.1');
    expect((await fetch(ignitionUrl)).status).toBe(200);
  });
});

describe.skipIf(!tmpfs.available)(`cldist serve --demo started on a full disk${skipped}`, () => {
  let dir = '';
  let disk: Tmpfs | undefined;

  afterEach(async () => {
    await disk?.unmount();
    await rm(dir, { recursive: true, force: true });
  });

  it.each([
    ['on its first start', false],
    ['with the key of an earlier run (the sim origin is already listening when the disk refuses)', true],
  ])(
    'exits non-zero with a clear message, closes everything and leaves no .tmp file: %s',
    async (_when, keyed) => {
      dir = await tempDir('demo-full');
      disk = await mountTmpfs(join(dir, 'data'), 1 * MiB);
      if (keyed) {
        await mkdir(join(disk.path, 'demo', 'sim-origin'), { recursive: true });
        const key = await generateSimKey('curve25519');
        await writeFile(
          join(disk.path, 'demo', 'sim-origin', 'sim-origin-private-key.asc'),
          key.privateKey.armor(),
        );
      }
      await disk.fill();
      const child = spawn(
        process.execPath,
        [
          join(projectRoot, 'bin/cldist.js'),
          'serve',
          '--demo',
          '--port',
          '0',
          '--data-dir',
          join(disk.path, 'demo'),
        ],
        { cwd: projectRoot, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
      clearTimeout(timer);
      expect(signal).toBeNull();
      expect(code).toBe(1);
      expect(stderr).toMatch(/cldist: the demo cannot write .*ENOSPC.*free space on that filesystem/);
      const left = await readdir(join(disk.path, 'demo', 'sim-origin')).catch(() => [] as string[]);
      expect(left.filter((name) => name.endsWith('.tmp'))).toEqual([]);
      expect(await readFile(join(disk.path, 'demo', 'serve.pid'), 'utf8').catch(() => 'absent')).toBe(
        'absent',
      );
    },
  );
});
