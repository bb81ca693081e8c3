import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export async function loadOrCreateAdminToken(dataDir: string): Promise<string> {
  const path = join(dataDir, 'admin-token');
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch {
    await mkdir(dataDir, { recursive: true });
    const token = randomBytes(32).toString('base64url');
    await writeFile(path, `${token}\n`, { mode: 0o600 });
    return token;
  }
}
