import { mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../../shared/errors.ts';

export const lockFileName = 'serve.pid';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * One runner per data dir: two dynalite instances on one LevelDB folder crash inside dynalite, and two
 * workers would share one staging folder. A pid file left by a killed runner is taken over.
 */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, lockFileName);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(path, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return async () => {
        await unlink(path).catch(() => undefined);
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10);
    if (Number.isInteger(holder) && alive(holder)) {
      throw new ConfigError(
        `data dir ${dataDir} is in use by another cldist serve (pid ${holder}); stop it or pass another --data-dir`,
      );
    }
    await unlink(path).catch(() => undefined);
  }
  throw new ConfigError(`could not lock data dir ${dataDir} (${path} keeps reappearing)`);
}
