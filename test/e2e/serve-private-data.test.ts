import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SimOrigin, startSimOrigin } from '../../local/sim-origin/sim-origin.ts';
import { projectRoot } from '../../shared/config.ts';
import { adminHeaders, publish, serveFor, simConfig, tempDir } from './serve-harness.ts';

const run = promisify(execFile);
const ignition = { ignition: { version: '3.4.0' } };

async function modeOf(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777;
}

async function filesUnder(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

/** Whether `nobody` can read a file, checked as that user; undefined where this machine cannot switch users. */
async function nobodyCanRead(path: string): Promise<boolean | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  try {
    await run('id', ['nobody']);
  } catch {
    return undefined;
  }
  try {
    await run('su', ['-s', '/bin/sh', 'nobody', '-c', `cat '${path}' > /dev/null`]);
    return true;
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') return undefined;
    return false;
  }
}

/**
 * A config store writer killed mid-write, the way a crash between staging and rename leaves its file: a
 * real process, a real staged upload, SIGKILL.
 */
async function crashMidWrite(configsDir: string): Promise<void> {
  const source = `
    const { createLocalStore } = await import(${JSON.stringify(join(projectRoot, 'shared/store/local-store.ts'))});
    const upload = await createLocalStore(${JSON.stringify(configsDir)}).beginUpload('instances/x/body.ign');
    await upload.write(new Uint8Array(4096));
    process.stdout.write('staged\\n');
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', source], {
    cwd: projectRoot,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await once(child.stdout, 'data');
  child.kill('SIGKILL');
  await once(child, 'exit');
}

describe('cldist serve keeps instance configs private', () => {
  let sim: SimOrigin;
  let dir = '';

  beforeAll(async () => {
    sim = await startSimOrigin();
    await publish(sim, 'stable', '4081.2.0');
    dir = await tempDir('private-data');
    // The temp dir itself is owner-only; open it so only the data dir's own modes stand in the way.
    await chmod(dir, 0o755);
  });

  afterAll(async () => {
    await sim?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('creates the data dir 0700 and writes config bodies 0600 in 0700 folders', async () => {
    const dataDir = join(dir, 'fresh');
    // Every body in the config store, so there are body files whose modes to check.
    const storeBodies = { instances: { inlineBodyMaxBytes: 0 } };
    const started = await serveFor(await simConfig(sim, dir, ['stable'], storeBodies), dataDir);
    try {
      const put = await fetch(`${started.handle.url}/v1/instances/a1`, {
        method: 'PUT',
        headers: { ...adminHeaders(started.handle), 'Content-Type': 'application/json' },
        body: JSON.stringify({ ignition }),
      });
      expect(put.status).toBe(201);
    } finally {
      await started.handle.close();
    }
    expect(await modeOf(dataDir)).toBe(0o700);
    const bodies = await filesUnder(join(dataDir, 'configs'));
    expect(bodies.length).toBeGreaterThan(0);
    for (const body of bodies) {
      expect(await modeOf(body)).toBe(0o600);
      for (let folder = join(body, '..'); folder !== dataDir; folder = join(folder, '..')) {
        expect(await modeOf(folder)).toBe(0o700);
      }
    }
    expect(started.records.some((r) => r.event === 'data_dir.open_permissions')).toBe(false);
  });

  it('warns about an open data dir, closes bodies an older version left open, and nobody can read them', async () => {
    const dataDir = join(dir, 'older');
    const body = join(dataDir, 'configs', 'instances', 'a1', 'old.ign');
    await mkdir(join(body, '..'), { recursive: true, mode: 0o755 });
    await chmod(dataDir, 0o755);
    await chmod(join(dataDir, 'configs'), 0o755);
    await writeFile(body, JSON.stringify(ignition), { mode: 0o644 });
    expect(await nobodyCanRead(body)).not.toBe(false);

    const started = await serveFor(await simConfig(sim, dir, ['stable']), dataDir);
    await started.handle.close();
    const warning = started.records.find((r) => r.event === 'data_dir.open_permissions');
    expect(warning).toMatchObject({ level: 'warn', dataDir, mode: '0755', fix: `chmod 700 ${dataDir}` });
    expect(started.records.find((r) => r.event === 'configs.permissions_tightened')).toMatchObject({
      was: '0755',
      entries: 3,
    });
    expect(await modeOf(body)).toBe(0o600);
    expect(await modeOf(join(dataDir, 'configs'))).toBe(0o700);
    const readable = await nobodyCanRead(body);
    if (readable !== undefined) expect(readable).toBe(false);
  });

  it('sweeps configs/.staging of the files crashed writers left behind', async () => {
    const dataDir = join(dir, 'crashed');
    await mkdir(dataDir, { mode: 0o700 });
    for (let i = 0; i < 3; i++) await crashMidWrite(join(dataDir, 'configs'));
    expect(await readdir(join(dataDir, 'configs', '.staging'))).toHaveLength(3);
    const started = await serveFor(await simConfig(sim, dir, ['stable']), dataDir);
    await started.handle.close();
    expect(await readdir(join(dataDir, 'configs', '.staging'))).toEqual([]);
    expect(started.records.find((r) => r.event === 'store.staging_swept')).toMatchObject({
      files: 3,
      root: join(dataDir, 'configs'),
    });
  });
});
