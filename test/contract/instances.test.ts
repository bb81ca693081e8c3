import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type AdminAuth, createApiApp } from '../../shared/api/app.ts';
import { type RunningServer, serveNode } from '../../shared/api/node-server.ts';
import { type AwsClients, makeAwsClients } from '../../shared/aws-clients.ts';
import { parseConfig } from '../../shared/config.ts';
import { loadIdIndex, withRecordCache } from '../../shared/instances/record-cache.ts';
import { createDynamoInstanceRepository } from '../../shared/instances/repository.ts';
import type { InstanceRepository } from '../../shared/instances/types.ts';
import { createLocalStore } from '../../shared/store/local-store.ts';
import { createS3Store } from '../../shared/store/s3-store.ts';
import type { ObjectStore } from '../../shared/store/types.ts';
import { describeContract } from '../support/contract.ts';
import { freshTable as createTable, emulatorClients, freshBucket } from '../support/emulators.ts';

const adminToken = 'admin-secret-for-tests';
const ignitionAccept = 'application/vnd.coreos.ignition+json;version=3.3.0, */*;q=0.1';
const ignitionConfig = {
  ignition: { version: '3.3.0' },
  storage: { files: [{ path: '/etc/hostname', mode: 420, contents: { source: 'data:,node-1' } }] },
};

/** `env` is what a Lambda host passes the app (the event's request context); a node server has none. */
type Send = (path: string, init?: RequestInit, env?: unknown) => Promise<Response>;

interface Harness {
  send: Send;
  instances: InstanceRepository;
  bodies: ObjectStore;
  /** Moves the injected clock. */
  setNow(date: Date): void;
  /** The peer address the transport shows the app. */
  expectedIp: string;
  /** Errors the app logged instead of showing. */
  internalErrors: unknown[];
  /** Fetches refused before the token was shown: counted, never audited. */
  refused: string[];
}

interface Shape {
  bodies: 'fauxqs S3' | 'local folder';
  transport: 'app.request' | 'node server';
  /** The single-machine record cache in front of the ledger. */
  recordCache?: boolean;
  /** Every body in the config store (`instances.inlineBodyMaxBytes: 0`) instead of small ones inline. */
  storeBodies?: boolean;
}

/** dynalite answers ResourceNotFound for a moment after CreateTable; wait until it is ACTIVE. */
async function freshTable(clients: AwsClients): Promise<string> {
  const table = await createTable(clients);
  await waitUntilTableExists(
    { client: clients.dynamodb, maxWaitTime: 10, minDelay: 0.05, maxDelay: 0.2 },
    { TableName: table },
  );
  return table;
}

async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const address = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

async function makeHarness(
  shape: Shape,
  options: { instances?: InstanceRepository; adminAuth?: AdminAuth } = {},
): Promise<{ subject: Harness; cleanup: () => Promise<void> }> {
  const clients = emulatorClients();
  let bodies: ObjectStore;
  let dir: string | undefined;
  if (shape.bodies === 'fauxqs S3') {
    bodies = createS3Store(clients.s3, { bucket: await freshBucket(clients, 'configs') });
  } else {
    dir = await mkdtemp(join(tmpdir(), 'cldist-configs-'));
    bodies = createLocalStore(dir);
  }
  const ledger =
    options.instances ??
    createDynamoInstanceRepository(clients.doc, { table: await freshTable(clients), flushIntervalMs: 10 });
  const instances = shape.recordCache
    ? withRecordCache(ledger, { index: await loadIdIndex(ledger) })
    : ledger;
  let now = new Date('2026-01-01T00:00:00Z');
  const internalErrors: unknown[] = [];
  const refused: string[] = [];
  const app = createApiApp(
    {
      instances,
      bodies,
      clock: () => now,
      adminAuth: options.adminAuth ?? { kind: 'bearer', token: adminToken },
      onInternalError: (error) => internalErrors.push(error),
      countRefused: (outcome) => refused.push(outcome),
    },
    parseConfig(shape.storeBodies === true ? { instances: { inlineBodyMaxBytes: 0 } } : {}),
  );
  let server: RunningServer | undefined;
  let send: Send;
  if (shape.transport === 'node server') {
    const running = await serveNode(app, { host: '127.0.0.1', port: 0 });
    server = running;
    send = (path, init) => fetch(`${running.url}${path}`, init);
  } else {
    send = async (path, init, env) => app.request(path, init, env as object | undefined);
  }
  return {
    subject: {
      send,
      instances,
      bodies,
      setNow: (date) => {
        now = date;
      },
      expectedIp: shape.transport === 'node server' ? '127.0.0.1' : 'unknown',
      internalErrors,
      refused,
    },
    cleanup: async () => {
      await server?.close();
      await instances.close().catch(() => undefined);
      if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    },
  };
}

const admin = { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' };

async function put(send: Send, id: string, body: unknown): Promise<Response> {
  return send(`/v1/instances/${id}`, { method: 'PUT', headers: admin, body: JSON.stringify(body) });
}

async function register(send: Send, id: string, body: unknown = { ignition: ignitionConfig }) {
  const response = await put(send, id, body);
  expect(response.status).toBe(201);
  return (await response.json()) as { token: string; ignitionUrl?: string; cloudConfigUrl?: string };
}

function fetchIgnition(
  send: Send,
  id: string,
  token: string | undefined,
  viaQuery = false,
): Promise<Response> {
  const headers: Record<string, string> = { Accept: ignitionAccept, 'User-Agent': 'Ignition/test' };
  if (token !== undefined && !viaQuery) headers.Authorization = `Bearer ${token}`;
  const query = token !== undefined && viaQuery ? `?token=${encodeURIComponent(token)}` : '';
  return send(`/v1/instances/${id}/ignition${query}`, { headers });
}

const shapes: Shape[] = [
  { bodies: 'fauxqs S3', transport: 'app.request', storeBodies: true },
  { bodies: 'local folder', transport: 'node server' },
  { bodies: 'local folder', transport: 'node server', recordCache: true },
];

describeContract<Harness>(
  'instance config API',
  shapes.map((shape) => ({
    name: `${shape.bodies} via ${shape.transport}${shape.recordCache ? ' with the record cache' : ''}${shape.storeBodies ? ', every body in the store' : ''}`,
    make: () => makeHarness(shape),
  })),
  (make) => {
    let h: Harness;
    let cleanup: (() => Promise<void>) | undefined;
    beforeEach(async () => {
      const made = await make();
      h = made.subject;
      cleanup = made.cleanup;
    });
    afterEach(async () => {
      await cleanup?.();
      expect(h.internalErrors).toEqual([]);
    });

    it('registers an Ignition config and serves it with its token, by header or query', async () => {
      const answer = await register(h.send, 'node-1');
      expect(answer.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(answer.ignitionUrl).toMatch(/\/v1\/instances\/node-1\/ignition\?token=/);
      expect(answer.cloudConfigUrl).toBeUndefined();
      for (const viaQuery of [false, true]) {
        const response = await fetchIgnition(h.send, 'node-1', answer.token, viaQuery);
        expect(response.status).toBe(200);
        expect(response.headers.get('content-type')).toBe('application/vnd.coreos.ignition+json');
        expect(response.headers.get('cache-control')).toBe('no-store');
        expect(response.headers.get('etag')).toMatch(/^"[0-9a-f]{32}"$/);
        expect(await response.json()).toEqual(ignitionConfig);
      }
    });

    it('serves an Ignition config given as text byte for byte, so a hash over it stays valid', async () => {
      const text = `{ "ignition": { "version": "3.4.0" } }\n`;
      const answer = await register(h.send, 'exact', { ignition: text });
      const response = await fetchIgnition(h.send, 'exact', answer.token);
      expect(await response.text()).toBe(text);
    });

    it('serves a cloud-config at its own route', async () => {
      const cloudConfig = '#cloud-config\nhostname: old-node\n';
      const answer = await register(h.send, 'old', { cloudConfig });
      expect(answer.cloudConfigUrl).toMatch(/\/v1\/instances\/old\/cloud-config\?token=/);
      const response = await h.send('/v1/instances/old/cloud-config', {
        headers: { Authorization: `Bearer ${answer.token}` },
      });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/cloud-config; charset=utf-8');
      expect(await response.text()).toBe(cloudConfig);
      expect((await fetchIgnition(h.send, 'old', answer.token)).status).toBe(404);
    });

    it('answers every way of not getting a config with the same 404', async () => {
      const answer = await register(h.send, 'node-1');
      await register(h.send, 'soon-gone', { ignition: ignitionConfig, expiresAt: '2026-01-02T00:00:00Z' });
      const once = await register(h.send, 'once', { ignition: ignitionConfig, oneTime: true });
      expect((await fetchIgnition(h.send, 'once', once.token)).status).toBe(200);
      h.setNow(new Date('2026-01-03T00:00:00Z'));
      const attempts = [
        fetchIgnition(h.send, 'nobody', answer.token),
        fetchIgnition(h.send, 'node-1', 'wrong-token'),
        fetchIgnition(
          h.send,
          'node-1',
          `${answer.token.slice(0, -1)}${answer.token.endsWith('A') ? 'B' : 'A'}`,
        ),
        fetchIgnition(h.send, 'node-1', undefined),
        fetchIgnition(h.send, 'once', once.token),
        fetchIgnition(h.send, 'soon-gone', answer.token),
        h.send(`/v1/instances/node-1/cloud-config?token=${answer.token}`),
      ];
      const responses = await Promise.all(attempts);
      const bodies = await Promise.all(responses.map((r) => r.text()));
      expect(responses.map((r) => r.status)).toEqual(Array(attempts.length).fill(404));
      expect(new Set(bodies)).toEqual(new Set(['{"error":{"code":"not-found","message":"not found"}}']));
    });

    it('expires a config at its expiry time (injected clock)', async () => {
      const answer = await register(h.send, 'node-1', {
        ignition: ignitionConfig,
        expiresAt: '2026-01-01T01:00:00Z',
      });
      h.setNow(new Date('2026-01-01T00:59:59Z'));
      expect((await fetchIgnition(h.send, 'node-1', answer.token)).status).toBe(200);
      h.setNow(new Date('2026-01-01T01:00:00Z'));
      expect((await fetchIgnition(h.send, 'node-1', answer.token)).status).toBe(404);
    });

    it('refuses an expiry in the past', async () => {
      const response = await put(h.send, 'node-1', {
        ignition: ignitionConfig,
        expiresAt: '2025-12-31T00:00:00Z',
      });
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ error: { path: '$.expiresAt' } });
    });

    it('hands a one-time config to exactly one of 10 concurrent fetches', async () => {
      const answer = await register(h.send, 'once', { ignition: ignitionConfig, oneTime: true });
      const responses = await Promise.all(
        Array.from({ length: 10 }, () => fetchIgnition(h.send, 'once', answer.token)),
      );
      const statuses = responses.map((r) => r.status).sort();
      expect(statuses).toEqual([200, ...Array(9).fill(404)]);
      expect((await fetchIgnition(h.send, 'once', answer.token)).status).toBe(404);
      const described = await (await h.send('/v1/instances/once', { headers: admin })).json();
      expect(described.consumedAt).toBe('2026-01-01T00:00:00.000Z');
    });

    it('does not use up a one-time config on HEAD', async () => {
      const answer = await register(h.send, 'once', { ignition: ignitionConfig, oneTime: true });
      const head = await h.send('/v1/instances/once/ignition', {
        method: 'HEAD',
        headers: { Authorization: `Bearer ${answer.token}` },
      });
      expect(head.status).toBe(200);
      expect((await fetchIgnition(h.send, 'once', answer.token)).status).toBe(200);
      expect((await fetchIgnition(h.send, 'once', answer.token)).status).toBe(404);
    });

    it('rotates the token on a new PUT and re-arms a consumed one-time config', async () => {
      const first = await register(h.send, 'node-1', { ignition: ignitionConfig, oneTime: true });
      expect((await fetchIgnition(h.send, 'node-1', first.token)).status).toBe(200);
      const again = await put(h.send, 'node-1', { ignition: ignitionConfig, oneTime: true });
      expect(again.status).toBe(200);
      const second = (await again.json()) as { token: string };
      expect(second.token).not.toBe(first.token);
      expect((await fetchIgnition(h.send, 'node-1', first.token)).status).toBe(404);
      expect((await fetchIgnition(h.send, 'node-1', second.token)).status).toBe(200);
    });

    it('shows metadata and the fetch audit, never the token', async () => {
      const answer = await register(h.send, 'node-1');
      await fetchIgnition(h.send, 'node-1', answer.token);
      await fetchIgnition(h.send, 'node-1', 'guess');
      const response = await h.send('/v1/instances/node-1', { headers: admin });
      expect(response.status).toBe(200);
      const text = await response.text();
      expect(text).not.toContain(answer.token);
      expect(text).not.toMatch(/tokenHash|bodyKey/);
      const described = JSON.parse(text);
      expect(described).toMatchObject({
        id: 'node-1',
        kind: 'ignition',
        specVersion: '3.3.0',
        oneTime: false,
      });
      expect(described.audit.map((a: { outcome: string }) => a.outcome)).toEqual(['served']);
      expect(h.refused).toEqual(['wrong-token']);
      for (const entry of described.audit) {
        expect(entry).toMatchObject({
          userAgent: 'Ignition/test',
          sourceIp: h.expectedIp,
          route: 'ignition',
        });
        expect(entry.at).toBe('2026-01-01T00:00:00.000Z');
      }
    });

    it('deletes an instance: its config is gone and a second delete is a 404', async () => {
      const answer = await register(h.send, 'node-1');
      await fetchIgnition(h.send, 'node-1', answer.token);
      expect((await h.send('/v1/instances/node-1', { method: 'DELETE', headers: admin })).status).toBe(204);
      expect((await fetchIgnition(h.send, 'node-1', answer.token)).status).toBe(404);
      expect((await h.send('/v1/instances/node-1', { headers: admin })).status).toBe(404);
      expect((await h.send('/v1/instances/node-1', { method: 'DELETE', headers: admin })).status).toBe(404);
    });

    it('requires the admin token on admin routes only', async () => {
      const noAuth = await h.send('/v1/instances/node-1', {
        method: 'PUT',
        body: JSON.stringify({ ignition: ignitionConfig }),
      });
      expect(noAuth.status).toBe(401);
      expect(noAuth.headers.get('www-authenticate')).toMatch(/^Bearer/);
      const wrong = await h.send('/v1/instances/node-1', { headers: { Authorization: 'Bearer nope' } });
      expect(wrong.status).toBe(401);
      expect((await h.send('/v1/instances/node-1', { method: 'DELETE' })).status).toBe(401);
    });

    it('refuses bad admin input with 400 naming the field', async () => {
      const cases: [unknown, string][] = [
        [
          { ignition: { ignition: { version: '3.3.0' }, storage: { files: [{ path: 'x' }] } } },
          '$.storage.files[0].path',
        ],
        [{ ignition: ignitionConfig, cloudConfig: '#cloud-config\n' }, '$'],
        [{}, '$'],
        [{ ignition: '{not json' }, '$.ignition'],
        [{ cloudConfig: 'hostname: a' }, '$.cloudConfig'],
        [{ ignition: ignitionConfig, oneTime: 'yes' }, '$.oneTime'],
        [{ ignition: ignitionConfig, expiresAt: 'tomorrow' }, '$.expiresAt'],
        [{ ignition: ignitionConfig, extra: 1 }, '$'],
        [{ ignition: { ignition: { version: '2.2.0' } } }, '$.ignition.version'],
      ];
      for (const [body, path] of cases) {
        const response = await put(h.send, 'node-1', body);
        expect(response.status, JSON.stringify(body)).toBe(400);
        const answer = await response.json();
        expect(answer.error.path, JSON.stringify(body)).toBe(path);
        expect(answer.error.message).toEqual(expect.any(String));
      }
      const notJson = await h.send('/v1/instances/node-1', { method: 'PUT', headers: admin, body: '{' });
      expect(notJson.status).toBe(400);
      expect((await notJson.json()).error.code).toBe('invalid-json');
      const badId = await put(h.send, '-bad', { ignition: ignitionConfig });
      expect(badId.status).toBe(400);
      expect((await badId.json()).error.path).toBe('$.id');
      expect((await put(h.send, 'a'.repeat(129), { ignition: ignitionConfig })).status).toBe(400);
    });

    it('refuses a body over 1 MiB with 413', async () => {
      const big = `#cloud-config\nwrite_files:\n  - content: "${'x'.repeat(1024 * 1024)}"\n`;
      const response = await put(h.send, 'node-1', { cloudConfig: big });
      expect(response.status).toBe(413);
      expect((await response.json()).error.code).toBe('too-large');
    });

    it('answers unknown routes with a JSON 404', async () => {
      const response = await h.send('/v2/nothing', { headers: admin });
      expect(response.status).toBe(404);
      expect(await response.json()).toEqual({ error: { code: 'not-found', message: 'not found' } });
    });

    it('answers 503 with Retry-After while a config body is not readable', async () => {
      // Larger than the inline limit, so the body is in the config store.
      const large = {
        ignition: { version: '3.3.0' },
        storage: { files: [{ path: '/etc/big', contents: { source: `data:,${'x'.repeat(40 * 1024)}` } }] },
      };
      const answer = await register(h.send, 'node-1', { ignition: large });
      const described = await h.instances.get('node-1');
      expect(described?.inlineBody).toBeUndefined();
      await h.bodies.delete(described?.bodyKey ?? '');
      const response = await fetchIgnition(h.send, 'node-1', answer.token);
      expect(response.status).toBe(503);
      expect(response.headers.get('retry-after')).toBe('5');
    });
  },
);

describe('instance config API with its backing stores down', () => {
  it.each(shapes.slice(0, 2))(
    'answers 503 with Retry-After when DynamoDB is unreachable ($transport)',
    async (shape) => {
      const down = makeAwsClients({ dynamodb: `http://127.0.0.1:${await closedPort()}` });
      const instances = createDynamoInstanceRepository(down.doc, {
        table: 'cldist-ledger',
        onAuditError: () => undefined,
      });
      const { subject: h, cleanup } = await makeHarness(shape, { instances });
      try {
        const response = await fetchIgnition(h.send, 'node-1', 'some-token');
        expect(response.status).toBe(503);
        expect(response.headers.get('retry-after')).toBe('5');
        expect(await response.json()).toEqual({
          error: { code: 'unavailable', message: 'temporarily unavailable, retry later' },
        });
        expect((await put(h.send, 'node-1', { ignition: ignitionConfig })).status).toBe(503);
        // Nobody showed a token, so the outage is counted, not queued as audit for a ledger that is down.
        expect(h.refused).toEqual(['unavailable']);
      } finally {
        await cleanup();
      }
    },
  );

  it('never shows an internal error to the client', async () => {
    const clients = emulatorClients();
    const real = createDynamoInstanceRepository(clients.doc, { table: await freshTable(clients) });
    const broken: InstanceRepository = {
      ...real,
      get: () => Promise.reject(new Error('secret internal detail at /srv/app.ts:12')),
    };
    const { subject: h, cleanup } = await makeHarness(shapes[0] as Shape, { instances: broken });
    try {
      const response = await fetchIgnition(h.send, 'node-1', 'token');
      expect(response.status).toBe(500);
      const text = await response.text();
      expect(text).toBe('{"error":{"code":"internal","message":"internal error"}}');
      expect(h.internalErrors).toHaveLength(1);
    } finally {
      await cleanup();
    }
  });

  it('lets in an admin caller the IAM authorizer vouched for, and refuses one without it', async () => {
    const { subject: h, cleanup } = await makeHarness(shapes[0] as Shape, { adminAuth: { kind: 'iam' } });
    try {
      const body = JSON.stringify({ ignition: ignitionConfig });
      const authorized = {
        requestContext: { authorizer: { iam: { userArn: 'arn:aws:iam::000000000000:user/op' } } },
      };
      const vouched = await h.send('/v1/instances/node-1', { method: 'PUT', body }, authorized);
      expect(vouched.status).toBe(201);
      // A route deployed without the authorizer: the event has no IAM caller, whatever the headers say.
      const bare = await h.send('/v1/instances/node-2', {
        method: 'PUT',
        body,
        headers: { Authorization: 'AWS4-HMAC-SHA256 Credential=forged', 'x-amzn-iam-user': 'admin' },
      });
      expect(bare.status).toBe(403);
      expect(await bare.json()).toMatchObject({ error: { code: 'forbidden' } });
      expect(await h.instances.get('node-2')).toBeUndefined();
    } finally {
      await cleanup();
    }
  });
});
