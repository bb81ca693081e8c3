import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lockDataDir, lockFileName } from '../../local/runtime/data-dir-lock.ts';
import { projectRoot } from '../../shared/config.ts';
import { ConfigError } from '../../shared/errors.ts';

/** Another process holding the lock, the way a second `cldist serve` would; it exits when its stdin closes. */
async function holder(dataDir: string): Promise<ChildProcess> {
  const source = `
    const { lockDataDir } = await import(${JSON.stringify(join(projectRoot, 'local/runtime/data-dir-lock.ts'))});
    lockDataDir(${JSON.stringify(dataDir)});
    process.stdout.write('locked\\n');
    process.stdin.on('end', () => process.exit(0));
    process.stdin.resume();
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', source], {
    cwd: projectRoot,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const [chunk] = (await once(child.stdout as NodeJS.ReadableStream, 'data')) as [Buffer];
  expect(chunk.toString()).toBe('locked\n');
  return child;
}

describe('data dir lock', () => {
  let dataDir = '';
  const children: ChildProcess[] = [];

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'cldist-lock-'));
  });

  afterEach(async () => {
    for (const child of children.splice(0)) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
    }
    await rm(dataDir, { recursive: true, force: true });
  });

  it('refuses a second lock in the same process and names the holder', () => {
    const first = lockDataDir(dataDir);
    expect(() => lockDataDir(dataDir)).toThrow(ConfigError);
    expect(() => lockDataDir(dataDir)).toThrow(
      `data dir ${dataDir} is in use by another cldist serve (pid ${process.pid})`,
    );
    first.release();
    lockDataDir(dataDir).release();
  });

  it('refuses while another process holds it, and takes over once that process is killed', async () => {
    const child = await holder(dataDir);
    children.push(child);
    expect(() => lockDataDir(dataDir)).toThrow(/is in use by another cldist serve \(pid \d+\)/);
    child.kill('SIGKILL');
    await once(child, 'exit');
    expect(await readFile(join(dataDir, lockFileName), 'utf8')).toBe(`${child.pid}\n`);
    const lock = lockDataDir(dataDir);
    expect(await readFile(join(dataDir, lockFileName), 'utf8')).toBe(`${process.pid}\n`);
    lock.release();
  });

  it.each([
    ['its own pid, as after a container restart', () => process.pid],
    ['a live unrelated pid', () => 1],
    ['a pid that no longer exists', () => 2 ** 22 + 17],
    ['garbage', () => Number.NaN],
  ])('is not blocked by a stale file naming %s', async (_what, pid) => {
    await writeFile(join(dataDir, lockFileName), `${pid()}\n`);
    const lock = lockDataDir(dataDir);
    expect(await readFile(join(dataDir, lockFileName), 'utf8')).toBe(`${process.pid}\n`);
    lock.release();
  });

  it('removes the file on release, and release is idempotent', async () => {
    const lock = lockDataDir(dataDir);
    lock.release();
    lock.release();
    await expect(stat(join(dataDir, lockFileName))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('a child that exits normally removes its file', async () => {
    const child = await holder(dataDir);
    children.push(child);
    child.stdin?.end();
    await once(child, 'exit');
    await expect(stat(join(dataDir, lockFileName))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
