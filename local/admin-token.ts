import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../shared/errors.ts';

export const adminTokenFileName = 'admin-token';

const tokenPattern = /^[A-Za-z0-9_-]{32,256}$/;

async function readExisting(path: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const token = text.trim();
  if (!tokenPattern.test(token)) {
    throw new ConfigError(`${path} does not hold an admin token; delete it to have a new one generated`);
  }
  const { mode } = await stat(path);
  if ((mode & 0o077) !== 0) {
    throw new ConfigError(
      `${path} is readable by other users (mode ${(mode & 0o777).toString(8)}); run: chmod 600 ${path}`,
    );
  }
  return token;
}

/**
 * The single-machine admin credential: generated on first start, kept (mode 0600) in the data dir so it
 * survives restarts and the CLI can find it. Created by hard-linking a fully written temp file, so two
 * processes starting at once agree on one token and nobody reads a half-written file.
 */
export async function loadOrCreateAdminToken(dataDir: string): Promise<{ token: string; created: boolean }> {
  const path = join(dataDir, adminTokenFileName);
  const existing = await readExisting(path);
  if (existing !== undefined) return { token: existing, created: false };
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const token = randomBytes(32).toString('base64url');
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(temp, `${token}\n`, { mode: 0o600, flag: 'wx' });
  try {
    await link(temp, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const winner = await readExisting(path);
    if (winner === undefined) throw error;
    return { token: winner, created: false };
  } finally {
    await unlink(temp).catch(() => undefined);
  }
  return { token, created: true };
}
