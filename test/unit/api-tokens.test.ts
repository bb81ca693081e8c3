import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadOrCreateAdminToken } from '../../local/admin-token.ts';
import { hashInstanceToken, instanceTokenMatches, newInstanceToken } from '../../shared/instances/tokens.ts';

describe('instance tokens', () => {
  it('are 256 random bits in base64url, never repeated', () => {
    const tokens = new Set(Array.from({ length: 1000 }, () => newInstanceToken()));
    expect(tokens.size).toBe(1000);
    for (const token of tokens) {
      expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(Buffer.from(token, 'base64url')).toHaveLength(32);
    }
  });

  it('are stored as SHA-256 and match only themselves', () => {
    const token = newInstanceToken();
    const hash = hashInstanceToken(token);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(hash).not.toContain(token);
    expect(instanceTokenMatches(token, hash)).toBe(true);
    expect(instanceTokenMatches(`${token}x`, hash)).toBe(false);
    expect(instanceTokenMatches(token.slice(1), hash)).toBe(false);
    expect(instanceTokenMatches('', hash)).toBe(false);
    expect(instanceTokenMatches(token, 'not-hex')).toBe(false);
  });
});

describe('the single-machine admin token', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cldist-admin-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is created once, mode 0600, and read back on later starts', async () => {
    const dataDir = join(dir, 'data');
    const first = await loadOrCreateAdminToken(dataDir);
    expect(first.created).toBe(true);
    expect(first.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const file = join(dataDir, 'admin-token');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await readFile(file, 'utf8')).trim()).toBe(first.token);
    expect(await loadOrCreateAdminToken(dataDir)).toEqual({ token: first.token, created: false });
  });

  it('gives concurrent first starts one and the same token', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateAdminToken(dir)));
    expect(new Set(results.map((r) => r.token)).size).toBe(1);
    expect(results.filter((r) => r.created)).toHaveLength(1);
  });

  it('refuses a token file others can read, and one that holds no token', async () => {
    await writeFile(join(dir, 'admin-token'), `${'a'.repeat(43)}\n`, { mode: 0o644 });
    await expect(loadOrCreateAdminToken(dir)).rejects.toThrow(/chmod 600/);
    await writeFile(join(dir, 'admin-token'), 'not a token', { mode: 0o600 });
    await rm(join(dir, 'admin-token'));
    await writeFile(join(dir, 'admin-token'), 'not a token', { mode: 0o600 });
    await expect(loadOrCreateAdminToken(dir)).rejects.toThrow(/does not hold an admin token/);
  });
});
