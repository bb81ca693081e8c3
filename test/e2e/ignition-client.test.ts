import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiApp } from '../../shared/api/app.ts';
import { type RunningServer, serveNode } from '../../shared/api/node-server.ts';
import { parseConfig } from '../../shared/config.ts';
import type { InstanceRepository } from '../../shared/instances/types.ts';
import { createLocalStore } from '../../shared/store/local-store.ts';
import type { ObjectStore } from '../../shared/store/types.ts';
import { type IgnitionRun, runIgnitionFetch } from '../support/ignition-run.ts';
import { freshInstanceRepository } from '../support/instance-api.ts';

const adminToken = 'e2e-admin-token';

/** What the instance ends up with: Ignition 2.14 accepts configs up to spec 3.3.0. */
const instanceConfig = {
  ignition: { version: '3.3.0' },
  storage: { files: [{ path: '/etc/hostname', mode: 420, contents: { source: 'data:,e2e-node' } }] },
  passwd: { users: [{ name: 'core', sshAuthorizedKeys: ['ssh-ed25519 AAAAC3Nza e2e'] }] },
};
const instanceText = JSON.stringify(instanceConfig);
const instanceHash = `sha512-${createHash('sha512').update(instanceText).digest('hex')}`;

describe('the real Ignition client (fetch stage) against the API', () => {
  let dir: string;
  let server: RunningServer;
  let instances: InstanceRepository;
  let bodies: ObjectStore;
  /** Status of every instance-route request the server answered, in order. */
  const answered: { path: string; status: number; userAgent: string }[] = [];
  let onAnswer: () => void = () => undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cldist-ignition-e2e-'));
    instances = await freshInstanceRepository();
    bodies = createLocalStore(join(dir, 'configs'));
    const api = createApiApp(
      { instances, bodies, clock: () => new Date(), adminAuth: { kind: 'bearer', token: adminToken } },
      // Bodies in the config store, so a test can make one unreadable for a while.
      parseConfig({ instances: { inlineBodyMaxBytes: 0 } }),
    );
    const app = new Hono();
    app.use(async (c, next) => {
      await next();
      answered.push({ path: c.req.path, status: c.res.status, userAgent: c.req.header('User-Agent') ?? '' });
      onAnswer();
    });
    app.route('/', api);
    server = await serveNode(app, { host: '127.0.0.1', port: 0 });
  });

  afterAll(async () => {
    await server?.close();
    await instances?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function register(id: string): Promise<{ token: string; ignitionUrl: string }> {
    const response = await fetch(`${server.url}/v1/instances/${id}`, {
      method: 'PUT',
      headers: { Authorization: `Bearer ${adminToken}` },
      body: JSON.stringify({ ignition: instanceText }),
    });
    expect(response.status).toBe(201);
    return (await response.json()) as { token: string; ignitionUrl: string };
  }

  function runIgnition(name: string, pointer: unknown): Promise<IgnitionRun> {
    return runIgnitionFetch(join(dir, name), pointer);
  }

  function expectOurConfig(run: IgnitionRun): void {
    expect(run.exitCode, run.output).toBe(0);
    expect(run.cached).toMatchObject({
      storage: { files: [expect.objectContaining({ path: '/etc/hostname' })] },
      passwd: { users: [expect.objectContaining({ name: 'core' })] },
    });
  }

  it('fetches its config with the token in the URL (kernel-argument style), checking verification.hash', async () => {
    const { ignitionUrl } = await register('url-token');
    const run = await runIgnition('url-token', {
      ignition: {
        version: '3.0.0',
        config: { replace: { source: ignitionUrl, verification: { hash: instanceHash } } },
      },
    });
    expectOurConfig(run);
    const seen = answered.filter((a) => a.path === '/v1/instances/url-token/ignition');
    expect(seen.map((a) => a.status)).toEqual([200]);
    expect(seen[0]?.userAgent).toMatch(/^Ignition\//);
  });

  it('fetches its config with an Authorization header (spec 3.1+ httpHeaders) through merge', async () => {
    const { token } = await register('header-token');
    const run = await runIgnition('header-token', {
      ignition: {
        version: '3.3.0',
        config: {
          merge: [
            {
              source: `${server.url}/v1/instances/header-token/ignition`,
              httpHeaders: [{ name: 'Authorization', value: `Bearer ${token}` }],
              verification: { hash: instanceHash },
            },
          ],
        },
      },
    });
    expectOurConfig(run);
    const audit = await fetch(`${server.url}/v1/instances/header-token`, {
      headers: { Authorization: `Bearer ${adminToken}` },
    }).then((r) => r.json());
    expect(audit.audit).toEqual([
      expect.objectContaining({
        outcome: 'served',
        sourceIp: '127.0.0.1',
        userAgent: expect.stringMatching(/^Ignition\//),
      }),
    ]);
  });

  it('refuses a config whose verification.hash does not match', async () => {
    const { ignitionUrl } = await register('bad-hash');
    const wrongHash = `sha512-${'0'.repeat(128)}`;
    const run = await runIgnition('bad-hash', {
      ignition: {
        version: '3.0.0',
        config: { replace: { source: ignitionUrl, verification: { hash: wrongHash } } },
      },
    });
    expect(run.exitCode).not.toBe(0);
    expect(run.output).toMatch(/hash|verification/i);
    expect(run.cached).toBeUndefined();
  });

  it('stops at once on a wrong token: one request, a 404, no retry loop', async () => {
    await register('wrong-token');
    const run = await runIgnition('wrong-token', {
      ignition: {
        version: '3.0.0',
        config: {
          replace: { source: `${server.url}/v1/instances/wrong-token/ignition?token=not-the-token` },
        },
      },
    });
    expect(run.exitCode).not.toBe(0);
    expect(run.output).toMatch(/resource not found/i);
    expect(run.cached).toBeUndefined();
    const seen = answered.filter((a) => a.path === '/v1/instances/wrong-token/ignition');
    expect(seen.map((a) => a.status)).toEqual([404]);
  });

  it('retries through 503s while the config is not readable, and succeeds once it is', async () => {
    const { ignitionUrl } = await register('comes-back');
    const record = await instances.get('comes-back');
    const bodyKey = record?.bodyKey ?? '';
    const body = await bodies.get(bodyKey);
    await bodies.delete(bodyKey);
    const path = '/v1/instances/comes-back/ignition';
    const restored = new Promise<void>((resolve, reject) => {
      onAnswer = () => {
        if (answered.filter((a) => a.path === path && a.status === 503).length === 2) {
          onAnswer = () => undefined;
          bodies.put(bodyKey, body ?? new Uint8Array()).then(resolve, reject);
        }
      };
    });
    const run = await runIgnition('comes-back', {
      ignition: {
        version: '3.0.0',
        config: { replace: { source: ignitionUrl, verification: { hash: instanceHash } } },
      },
    });
    await restored;
    expectOurConfig(run);
    const statuses = answered.filter((a) => a.path === path).map((a) => a.status);
    expect(statuses.slice(0, 2)).toEqual([503, 503]);
    expect(statuses.at(-1)).toBe(200);
  });
  it('boots before its config is registered (reserved): waits through 503s, succeeds once the config is put', async () => {
    const id = 'booted-early';
    const reserved = await fetch(`${server.url}/v1/instances/${id}/reserve`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${adminToken}` },
      body: JSON.stringify({ deadline: new Date(Date.now() + 10 * 60_000).toISOString() }),
    });
    expect(reserved.status).toBe(201);
    const { ignitionUrl } = (await reserved.json()) as { ignitionUrl: string };
    const path = `/v1/instances/${id}/ignition`;
    // The config is put only once the server has answered Ignition's fetches 503 twice, so the instance
    // provably booted (and retried) before it was registered.
    const registered = new Promise<number>((resolve, reject) => {
      onAnswer = () => {
        if (answered.filter((a) => a.path === path && a.status === 503).length === 2) {
          onAnswer = () => undefined;
          fetch(`${server.url}/v1/instances/${id}`, {
            method: 'PUT',
            headers: { Authorization: `Bearer ${adminToken}` },
            body: instanceText,
          }).then((r) => resolve(r.status), reject);
        }
      };
    });
    const run = await runIgnition(id, {
      ignition: {
        version: '3.0.0',
        config: { replace: { source: ignitionUrl, verification: { hash: instanceHash } } },
      },
    });
    expect(await registered).toBe(200);
    expectOurConfig(run);
    const statuses = answered.filter((a) => a.path === path).map((a) => a.status);
    expect(statuses.slice(0, 2)).toEqual([503, 503]);
    expect(statuses.at(-1)).toBe(200);
    const described = (await fetch(`${server.url}/v1/instances/${id}`, {
      headers: { Authorization: `Bearer ${adminToken}` },
    }).then((r) => r.json())) as { audit: { outcome: string }[] };
    const outcomes = described.audit.map((a) => a.outcome).reverse();
    expect(outcomes.slice(0, 2)).toEqual(['pending', 'pending']);
    expect(outcomes.at(-1)).toBe('served');
  });
});
