import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiApp } from '../../shared/api/app.ts';
import { parseConfig } from '../../shared/config.ts';
import type { InstanceRepository } from '../../shared/instances/types.ts';
import { createLocalStore } from '../../shared/store/local-store.ts';
import { freshInstanceRepository } from '../support/instance-api.ts';

const adminToken = 'admin-secret-for-strict-tests';
const admin = { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' };
const misspelt = {
  ignition: { version: '3.4.0' },
  passwd: { users: [{ name: 'core', sshAuthorisedKeys: ['ssh-ed25519 AAAA test'] }] },
};

interface Answer {
  status: number;
  body: {
    warnings?: { path: string; message: string }[];
    error?: { code: string; message: string; path?: string; issues?: { path: string; message: string }[] };
  };
}

describe('unknown Ignition keys: api.unknownIgnitionKeys and ?strict=true', () => {
  let dir: string;
  let instances: InstanceRepository;
  let send: (mode: 'warn' | 'reject', id: string, query: string, body: unknown) => Promise<Answer>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cldist-strict-'));
    instances = await freshInstanceRepository();
    const deps = {
      instances,
      bodies: createLocalStore(dir),
      clock: () => new Date(),
      adminAuth: { kind: 'bearer' as const, token: adminToken },
    };
    const apps = {
      warn: createApiApp(deps, parseConfig({})),
      reject: createApiApp(deps, parseConfig({ api: { unknownIgnitionKeys: 'reject' } })),
    };
    send = async (mode, id, query, body) => {
      const response = await apps[mode].request(`/v1/instances/${id}${query}`, {
        method: 'PUT',
        headers: admin,
        body: JSON.stringify(body),
      });
      return { status: response.status, body: (await response.json()) as Answer['body'] };
    };
  });

  afterAll(async () => {
    await instances?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('warns by default and names the nearest known key', async () => {
    const answer = await send('warn', 'warned', '', { ignition: misspelt });
    expect(answer.status).toBe(201);
    expect(answer.body.warnings).toEqual([
      {
        path: '$.passwd.users[0].sshAuthorisedKeys',
        message: 'unknown key, Ignition ignores it; did you mean `sshAuthorizedKeys`?',
      },
    ]);
  });

  it('refuses with ?strict=true, naming the path and the nearest key, and stores nothing', async () => {
    const answer = await send('warn', 'strict-query', '?strict=true', { ignition: misspelt });
    expect(answer.status).toBe(400);
    expect(answer.body.error?.issues).toEqual([
      {
        path: '$.passwd.users[0].sshAuthorisedKeys',
        message:
          'unknown key, refused because unknown Ignition keys are rejected; did you mean `sshAuthorizedKeys`?',
      },
    ]);
    expect(await instances.get('strict-query')).toBeUndefined();
  });

  it('refuses when the setting is reject, and ?strict=false does not loosen it', async () => {
    for (const query of ['', '?strict=false']) {
      const answer = await send('reject', `strict-config${query === '' ? '' : '-false'}`, query, {
        ignition: misspelt,
      });
      expect(answer.status).toBe(400);
      expect(answer.body.error?.issues?.map((issue) => issue.path)).toEqual([
        '$.passwd.users[0].sshAuthorisedKeys',
      ]);
    }
  });

  it('accepts a config with only known keys under reject', async () => {
    const good = { ignition: { version: '3.4.0' }, passwd: { users: [{ name: 'core' }] } };
    const answer = await send('reject', 'clean', '?strict=true', { ignition: good });
    expect(answer.status).toBe(201);
    expect(answer.body.warnings).toEqual([]);
  });

  it('answers 400 naming the parameter for a strict value that is neither true nor false', async () => {
    const answer = await send('warn', 'bad-query', '?strict=yes', { ignition: misspelt });
    expect(answer.status).toBe(400);
    expect(answer.body.error).toMatchObject({ code: 'invalid-query', path: '?strict' });
    expect(answer.body.error?.message).toContain('"yes"');
    expect(await instances.get('bad-query')).toBeUndefined();
  });
});
